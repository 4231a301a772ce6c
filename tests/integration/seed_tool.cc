// strata_seed: puts test data into a bucket for the mount tests and benchmarks, through the same
// S3Store the product uses. Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
//   strata_seed --endpoint URL --bucket B mb
//   strata_seed --endpoint URL --bucket B put KEY FILE [--meta NAME=VALUE...]  (multipart > 64 MiB)
//   strata_seed --endpoint URL --bucket B many PREFIX COUNT   (COUNT small objects, in parallel)
//   strata_seed --endpoint URL --bucket B rm PREFIX           (deletes every key under PREFIX)
//   strata_seed --endpoint URL --bucket B get KEY FILE        (writes the object's body to FILE)
//   strata_seed --endpoint URL --bucket B head KEY            (size, etag, content-type, metadata)
//   strata_seed --endpoint URL --bucket B ls PREFIX           (every key under PREFIX, one a line)
//   strata_seed --endpoint URL --bucket B compare LIST        (see Compare)
// Exit status 3 from get and head means no such key, so that scripts can test for absence; any
// other failure exits 1.
#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <thread>

#include "backends/credentials.h"
#include "backends/s3_store.h"
#include "backends/sigv4.h"

namespace {

using namespace strata;

constexpr uint64_t kPartBytes = 16 << 20;

Status PutFile(S3Store& store, const std::string& key, const std::string& path,
               const PutOptions& options) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return Status::Io("cannot open " + path);
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  if (size <= 4 * kPartBytes) {
    std::string body(size, '\0');
    in.read(body.data(), static_cast<std::streamsize>(size));
    return store.Put(key, body, options).status();
  }
  Result<std::string> id = store.CreateMultipartUpload(key, options);
  if (!id.ok()) return id.status();
  const int count = static_cast<int>((size + kPartBytes - 1) / kPartBytes);
  std::vector<PartInfo> parts(static_cast<size_t>(count));
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::mutex read_mu;
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      std::string body;
      for (int i = next++; i < count && !failed; i = next++) {
        {
          std::lock_guard lock(read_mu);
          const uint64_t offset = static_cast<uint64_t>(i) * kPartBytes;
          body.resize(std::min(kPartBytes, size - offset));
          in.seekg(static_cast<std::streamoff>(offset));
          in.read(body.data(), static_cast<std::streamsize>(body.size()));
        }
        Result<PartInfo> part = store.UploadPart(key, *id, i + 1, body);
        if (!part.ok()) {
          std::cerr << part.status().ToString() << "\n";
          failed = true;
          return;
        }
        parts[static_cast<size_t>(i)] = *part;
      }
    });
  }
  for (auto& t : workers) t.join();
  if (failed) {
    IgnoreError(store.AbortMultipartUpload(key, *id), "the part error is reported");
    return Status::Internal("a part upload failed");
  }
  return store.CompleteMultipartUpload(key, *id, parts).status();
}

Status PutMany(S3Store& store, const std::string& prefix, int count) {
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 16; ++w) {
    workers.emplace_back([&] {
      for (int i = next++; i < count; i = next++) {
        char name[32];
        std::snprintf(name, sizeof name, "f%06d", i);
        if (!store.Put(prefix + name, std::string("object ") + name + "\n", {}).ok()) failures++;
      }
    });
  }
  for (auto& t : workers) t.join();
  return failures == 0 ? Status::Ok() : Status::Internal(std::to_string(failures) + " puts failed");
}

Status RemovePrefix(S3Store& store, const std::string& prefix) {
  ListOptions options{.prefix = prefix};
  for (;;) {
    Result<ListPage> page = store.List(options);
    if (!page.ok()) return page.status();
    std::vector<std::string> keys;
    for (const ObjectInfo& o : page->objects) keys.push_back(o.key);
    if (!keys.empty()) {
      Result<std::vector<DeleteFailure>> deleted = store.DeleteBatch(keys);
      if (!deleted.ok()) return deleted.status();
    }
    if (!page->truncated) return Status::Ok();
    options.continuation_token = page->next_continuation_token;
  }
}

Status GetToFile(S3Store& store, const std::string& key, const std::string& path) {
  Result<GetResult> got = store.Get(key, {});
  if (!got.ok()) return got.status();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(got->body.data(), static_cast<std::streamsize>(got->body.size()));
  out.close();
  if (!out) return Status::Io("cannot write " + path);
  return Status::Ok();
}

// Checks that every object LIST names is in the bucket with the expected body, in one process
// (a shell loop of `get` pays a process start per object, slow under sanitizers). Each line of
// LIST is "KEY FILE" (the body is FILE's bytes) or "KEY sha256:HEX"; KEY holds no space. Prints
// one line per object missing or different (at most 20) and fails when there is any.
Status Compare(S3Store& store, const std::string& list_path) {
  std::ifstream list(list_path);
  if (!list) return Status::Io("cannot read " + list_path);
  std::vector<std::pair<std::string, std::string>> wanted;
  for (std::string line; std::getline(list, line);) {
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos) return Status::InvalidArgument("bad line: " + line);
    wanted.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  std::atomic<size_t> next{0};
  std::atomic<int> wrong{0};
  std::mutex out_mu;
  auto report = [&](const std::string& text) {
    if (wrong.fetch_add(1) >= 20) return;
    std::lock_guard<std::mutex> lock(out_mu);
    std::cout << text << "\n";
  };
  std::vector<std::thread> workers;
  for (int w = 0; w < 8; ++w) {
    workers.emplace_back([&] {
      for (size_t i = next++; i < wanted.size(); i = next++) {
        const auto& [key, expected] = wanted[i];
        Result<GetResult> got = store.Get(key, {});
        if (!got.ok()) {
          report(key + ": " +
                 (got.status().IsNotFound() ? std::string("not in the bucket")
                                            : got.status().ToString()));
          continue;
        }
        const std::string sha = Sha256Hex(got->body);
        if (expected.starts_with("sha256:")) {
          if (sha != expected.substr(7)) {
            report(key + ": " + sha.substr(0, 12) + " in the bucket, expected " +
                   expected.substr(7, 12));
          }
          continue;
        }
        std::ifstream in(expected, std::ios::binary);
        const std::string body{std::istreambuf_iterator<char>(in), {}};
        if (!in.eof() && !in) {
          report(key + ": cannot read " + expected);
        } else if (body != got->body) {
          report(key + ": differs in the bucket (" + std::to_string(got->body.size()) +
                 " bytes, expected " + std::to_string(body.size()) + ")");
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  std::cout << wanted.size() << " objects compared, " << wrong.load() << " missing or different\n";
  if (wrong > 0) return Status::Internal("objects missing or different");
  return Status::Ok();
}

// One "NAME VALUE" line per attribute, so that scripts can grep or awk them.
Status PrintHead(S3Store& store, const std::string& key) {
  Result<ObjectInfo> info = store.Head(key);
  if (!info.ok()) return info.status();
  std::cout << "size " << info->size << "\n";
  std::cout << "etag " << info->etag << "\n";
  if (!info->content_type.empty()) std::cout << "content-type " << info->content_type << "\n";
  for (const auto& [name, value] : info->metadata) {
    std::cout << "meta " << name << " " << value << "\n";
  }
  return Status::Ok();
}

Status PrintKeys(S3Store& store, const std::string& prefix) {
  ListOptions options{.prefix = prefix};
  for (;;) {
    Result<ListPage> page = store.List(options);
    if (!page.ok()) return page.status();
    for (const ObjectInfo& o : page->objects) std::cout << o.key << "\n";
    if (!page->truncated) return Status::Ok();
    options.continuation_token = page->next_continuation_token;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"strata_seed: test data for strata's mount tests"};
  std::string endpoint, bucket, a, b;
  app.add_option("--endpoint", endpoint)->required();
  app.add_option("--bucket", bucket)->required();
  app.require_subcommand(1);
  CLI::App* mb = app.add_subcommand("mb", "create the bucket");
  CLI::App* put = app.add_subcommand("put", "put a local file");
  put->add_option("key", a)->required();
  put->add_option("file", b)->required();
  std::vector<std::string> meta;
  put->add_option("--meta", meta, "user metadata NAME=VALUE (repeatable)");
  CLI::App* many = app.add_subcommand("many", "put COUNT small objects under PREFIX");
  int count = 0;
  many->add_option("prefix", a)->required();
  many->add_option("count", count)->required();
  CLI::App* rm = app.add_subcommand("rm", "delete every key under PREFIX");
  rm->add_option("prefix", a)->required();
  CLI::App* get = app.add_subcommand("get", "write an object's body to a local file");
  get->add_option("key", a)->required();
  get->add_option("file", b)->required();
  CLI::App* head = app.add_subcommand("head", "print an object's size, etag and metadata");
  head->add_option("key", a)->required();
  CLI::App* ls = app.add_subcommand("ls", "print every key under PREFIX");
  ls->add_option("prefix", a)->required();
  CLI::App* compare = app.add_subcommand("compare", "check objects against local files or hashes");
  compare->add_option("list", a)->required();
  CLI11_PARSE(app, argc, argv);

  Result<Credentials> creds = ResolveCredentials({}, ProcessEnvironment());
  if (!creds.ok()) {
    std::cerr << creds.status().message() << "\n";
    return 1;
  }
  S3Options options{.bucket = bucket, .endpoint = endpoint, .credentials = *creds};
  Result<std::unique_ptr<S3Store>> store = S3Store::Create(options);
  if (!store.ok()) {
    std::cerr << store.status().ToString() << "\n";
    return 1;
  }
  PutOptions put_options;
  for (const std::string& m : meta) {
    const size_t eq = m.find('=');
    if (eq == std::string::npos) {
      std::cerr << "--meta wants NAME=VALUE\n";
      return 2;
    }
    put_options.metadata[m.substr(0, eq)] = m.substr(eq + 1);
  }
  Status st = mb->parsed()        ? (*store)->CreateBucket()
              : put->parsed()     ? PutFile(**store, a, b, put_options)
              : many->parsed()    ? PutMany(**store, a, count)
              : get->parsed()     ? GetToFile(**store, a, b)
              : head->parsed()    ? PrintHead(**store, a)
              : ls->parsed()      ? PrintKeys(**store, a)
              : compare->parsed() ? Compare(**store, a)
                                  : RemovePrefix(**store, a);
  std::cout.flush();
  if (!st.ok()) {
    std::cerr << "strata_seed: " << st.ToString() << "\n";
    return st.IsNotFound() && (get->parsed() || head->parsed()) ? 3 : 1;
  }
  if (!std::cout) {
    std::cerr << "strata_seed: cannot write to stdout\n";
    return 1;
  }
  return 0;
}
