// strata_bench_random: random 4 KiB reads of one file with O_DIRECT (so the kernel page cache
// does not answer for the filesystem under test), from N threads for a fixed time. Prints IOPS.
//   strata_bench_random FILE THREADS SECONDS
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s FILE THREADS SECONDS\n", argv[0]);
    return 2;
  }
  const char* path = argv[1];
  const int threads = std::atoi(argv[2]);
  const double seconds = std::atof(argv[3]);
  struct stat st {};
  if (stat(path, &st) != 0 || st.st_size < 4096) {
    std::perror(path);
    return 1;
  }
  const uint64_t blocks = static_cast<uint64_t>(st.st_size) / 4096;
  std::atomic<uint64_t> reads{0};
  std::atomic<bool> failed{false};
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(seconds));
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      const int fd = open(path, O_RDONLY | O_DIRECT);
      if (fd < 0) {
        failed = true;
        return;
      }
      void* buffer = nullptr;
      if (posix_memalign(&buffer, 4096, 4096) != 0) {
        failed = true;
        close(fd);
        return;
      }
      std::mt19937_64 rng(static_cast<uint64_t>(t) * 7919 + 1);
      std::uniform_int_distribution<uint64_t> pick(0, blocks - 1);
      uint64_t done = 0;
      while (std::chrono::steady_clock::now() < deadline) {
        if (pread(fd, buffer, 4096, static_cast<off_t>(pick(rng) * 4096)) != 4096) {
          failed = true;
          break;
        }
        ++done;
      }
      reads += done;
      free(buffer);
      close(fd);
    });
  }
  for (auto& w : workers) w.join();
  if (failed) {
    std::fprintf(stderr, "strata_bench_random: a read failed\n");
    return 1;
  }
  std::printf("%.0f\n", static_cast<double>(reads.load()) / seconds);
  return 0;
}
