// strata_bench_get: single-stream ranged-GET throughput of S3Store on one object.
//
// Each run creates a fresh S3Store (so it opens one connection, as one curl process does) and
// reads the whole object with sequential ranged GETs of --range-size bytes, one at a time over
// that connection; --range-size 0 reads it as a single ranged GET. The clock runs from just
// before the first GET to just after the last body is checked, connection set-up included. It
// prints MB/s (MB = 10^6 bytes) per run, the median, min and max, and the store's counters.
//
// The data is received into the GetResult body as any caller would get it, then discarded
// cheaply but honestly: every body's length must equal the range asked for, and the byte at
// every 4 KiB boundary of the object is folded into a checksum that must agree across runs and
// is printed, so nothing can be elided.
//
// With --seed it first uploads --size pseudo-random bytes under --key (multipart, 16 MiB parts,
// when larger than one part). tests/bench/get_vs_curl.sh runs this next to curl.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "backends/credentials.h"
#include "backends/object_store.h"
#include "backends/s3_store.h"
#include "base/status.h"

namespace strata {
namespace {

constexpr uint64_t kPartBytes = 16ull << 20;
constexpr uint64_t kSampleStride = 4096;

struct BenchOptions {
  std::string endpoint = "http://127.0.0.1:7480";
  std::string bucket = "strata-bench";
  std::string key = "bench/get-throughput";
  std::string region = "us-east-1";
  std::string access_key_id;
  std::string secret_access_key;
  std::optional<uint64_t> size;
  bool seed = false;
  uint64_t range_size = 8ull << 20;  // 0: the whole object as one range
  int runs = 5;
};

struct RunResult {
  double seconds = 0;
  uint64_t bytes = 0;
  uint64_t checksum = 0;
  S3Counters counters;
};

Result<std::unique_ptr<S3Store>> MakeStore(const BenchOptions& bench) {
  Result<Credentials> credentials =
      ResolveCredentials(CredentialOptions{bench.access_key_id, bench.secret_access_key, "", ""},
                         ProcessEnvironment());
  if (!credentials.ok()) return credentials.status();
  S3Options options;
  options.bucket = bench.bucket;
  options.endpoint = bench.endpoint;
  options.region = bench.region;
  options.addressing = AddressingStyle::kPath;
  options.credentials = std::move(credentials).value();
  return S3Store::Create(std::move(options));
}

// Deterministic and incompressible enough: radosgw stores what it is given.
void FillRandom(std::mt19937_64& rng, std::string& buffer) {
  size_t i = 0;
  for (; i + 8 <= buffer.size(); i += 8) {
    const uint64_t word = rng();
    std::memcpy(buffer.data() + i, &word, 8);
  }
  for (; i < buffer.size(); ++i) buffer[i] = static_cast<char>(rng());
}

Status Seed(S3Store& store, const std::string& key, uint64_t size) {
  std::mt19937_64 rng(0x5eed);
  std::string buffer(static_cast<size_t>(std::min(size, kPartBytes)), '\0');
  if (size <= kPartBytes) {
    FillRandom(rng, buffer);
    return store.Put(key, buffer, PutOptions{}).status();
  }
  Result<std::string> upload_id = store.CreateMultipartUpload(key, PutOptions{});
  if (!upload_id.ok()) return upload_id.status();
  std::vector<PartInfo> parts;
  for (uint64_t offset = 0; offset < size; offset += kPartBytes) {
    buffer.resize(static_cast<size_t>(std::min(kPartBytes, size - offset)));
    FillRandom(rng, buffer);
    Result<PartInfo> part =
        store.UploadPart(key, *upload_id, static_cast<int>(parts.size()) + 1, buffer);
    if (!part.ok()) {
      IgnoreError(store.AbortMultipartUpload(key, *upload_id), "the part upload error wins");
      return part.status();
    }
    parts.push_back(std::move(part).value());
  }
  Result<PutResult> done = store.CompleteMultipartUpload(key, *upload_id, parts);
  if (!done.ok()) {
    IgnoreError(store.AbortMultipartUpload(key, *upload_id), "the complete error wins");
  }
  return done.status();
}

// One pass over [0, size) with a fresh store, GETs of `range_size` bytes in order.
Result<RunResult> ReadOnce(const BenchOptions& bench, uint64_t size, uint64_t range_size,
                           std::vector<char>& buffer) {
  Result<std::unique_ptr<S3Store>> store = MakeStore(bench);
  if (!store.ok()) return store.status();
  RunResult run;
  // One buffer for the whole run, as the chunk cache reuses its buffers: the bytes land in
  // memory the process already owns, not in fresh pages for every GET.
  buffer.resize(static_cast<size_t>(std::min(range_size, size)));
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t offset = 0; offset < size; offset += range_size) {
    const uint64_t length = std::min(range_size, size - offset);
    Result<GetIntoResult> got = (*store)->GetInto(
        bench.key, GetOptions{.range = ByteRange{offset, length}}, std::span<char>(buffer));
    if (!got.ok()) return got.status();
    const std::string_view body(buffer.data(), got->bytes);
    if (body.size() != length) {
      return Status::Internal("GET of " + std::to_string(length) + " bytes at " +
                              std::to_string(offset) + " returned " + std::to_string(body.size()));
    }
    // Sample at absolute 4 KiB boundaries so every range size gives the same checksum.
    const uint64_t misalignment = offset % kSampleStride;
    for (uint64_t i = misalignment == 0 ? 0 : kSampleStride - misalignment; i < length;
         i += kSampleStride) {
      run.checksum = run.checksum * 31 + static_cast<unsigned char>(body[i]);
    }
    run.bytes += body.size();
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.counters = (*store)->counters();
  return run;
}

double Mbps(const RunResult& run) { return static_cast<double>(run.bytes) / run.seconds / 1e6; }

int Run(const BenchOptions& bench) {
  Result<std::unique_ptr<S3Store>> admin = MakeStore(bench);
  if (!admin.ok()) {
    std::fprintf(stderr, "strata_bench_get: %s\n", admin.status().ToString().c_str());
    return 1;
  }
  if (bench.seed) {
    const auto start = std::chrono::steady_clock::now();
    if (Status st = Seed(**admin, bench.key, *bench.size); !st.ok()) {
      std::fprintf(stderr, "strata_bench_get: seeding %s failed: %s\n", bench.key.c_str(),
                   st.ToString().c_str());
      return 1;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("seeded %s: %" PRIu64 " bytes in %.3f s\n", bench.key.c_str(), *bench.size,
                seconds);
  }
  Result<ObjectInfo> info = (*admin)->Head(bench.key);
  if (!info.ok()) {
    std::fprintf(stderr, "strata_bench_get: HEAD %s failed: %s\n", bench.key.c_str(),
                 info.status().ToString().c_str());
    return 1;
  }
  const uint64_t size = info->size;
  if (bench.size && *bench.size != size) {
    std::fprintf(stderr, "strata_bench_get: %s has %" PRIu64 " bytes, --size says %" PRIu64 "\n",
                 bench.key.c_str(), size, *bench.size);
    return 1;
  }
  if (size == 0) {
    std::fprintf(stderr, "strata_bench_get: %s is empty\n", bench.key.c_str());
    return 1;
  }
  if (bench.runs == 0) return 0;
  const uint64_t range_size = bench.range_size == 0 ? size : bench.range_size;
  std::printf("%s, key %s: %" PRIu64 " bytes in GETs of %" PRIu64 " bytes (%" PRIu64
              " per run), one stream\n",
              (*admin)->Describe().c_str(), bench.key.c_str(), size, range_size,
              (size + range_size - 1) / range_size);

  std::vector<double> mbps;
  std::optional<uint64_t> checksum;
  std::vector<char> buffer;  // resized (and so zero-filled, faulted in) before any timing
  for (int i = 1; i <= bench.runs; ++i) {
    Result<RunResult> run = ReadOnce(bench, size, range_size, buffer);
    if (!run.ok()) {
      std::fprintf(stderr, "strata_bench_get: run %d failed: %s\n", i,
                   run.status().ToString().c_str());
      return 1;
    }
    if (checksum && *checksum != run->checksum) {
      std::fprintf(stderr,
                   "strata_bench_get: run %d read different data (checksum %016" PRIx64
                   ", first run %016" PRIx64 ")\n",
                   i, run->checksum, *checksum);
      return 1;
    }
    checksum = run->checksum;
    mbps.push_back(Mbps(*run));
    const S3Counters& c = run->counters;
    std::printf("run=%d MBps=%.1f bytes=%" PRIu64 " seconds=%.6f requests=%" PRIu64
                " connections_opened=%" PRIu64 " retries=%" PRIu64 " bytes_received=%" PRIu64
                " checksum=%016" PRIx64 "\n",
                i, mbps.back(), run->bytes, run->seconds, c.requests, c.connections_opened,
                c.retries, c.bytes_received, run->checksum);
  }
  std::vector<double> sorted = mbps;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  const double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  std::printf("median MB/s %.1f (min %.1f, max %.1f, %zu runs)\n", median, sorted.front(),
              sorted.back(), n);
  return 0;
}

}  // namespace
}  // namespace strata

int main(int argc, char** argv) {
  strata::BenchOptions bench;
  CLI::App app{
      "Single-stream ranged-GET throughput of S3Store on one object (MB = 10^6 bytes). "
      "Credentials default to $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY."};
  app.add_option("--endpoint", bench.endpoint, "S3 endpoint URL (path-style)")
      ->capture_default_str();
  app.add_option("--bucket", bench.bucket, "Bucket, which must exist")->capture_default_str();
  app.add_option("--key", bench.key, "Object to read")->capture_default_str();
  app.add_option("--region", bench.region, "Region to sign for")->capture_default_str();
  app.add_option("--access-key-id", bench.access_key_id, "Access key id");
  app.add_option("--secret-access-key", bench.secret_access_key,
                 "Secret key; visible in the process list, prefer $AWS_SECRET_ACCESS_KEY");
  CLI::Option* size =
      app.add_option("--size", bench.size,
                     "Object size in bytes: what --seed uploads; otherwise checked against HEAD")
          ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  app.add_flag("--seed", bench.seed,
               "Upload --size pseudo-random bytes under --key first (16 MiB parts)")
      ->needs(size);
  app.add_option("--range-size", bench.range_size,
                 "Bytes per ranged GET; 0 reads the whole object as one ranged GET")
      ->capture_default_str();
  app.add_option("--runs", bench.runs, "Timed passes over the object; 0 only seeds")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return strata::Run(bench);
}
