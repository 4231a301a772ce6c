#include "tools/check_command.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "tools/store_errors.h"

namespace strata {
namespace {

// Prints "[ ok ] step  detail" lines and remembers whether anything failed.
class StepPrinter {
 public:
  explicit StepPrinter(std::ostream& out) : out_(out) {}

  void Ok(const std::string& step, const std::string& detail) { Line(" ok ", step, detail); }
  void Fail(const std::string& step, const std::string& detail) {
    failed_ = true;
    Line("FAIL", step, detail);
  }
  void Skip(const std::string& step) { Line("skip", step, "not run after the failure above"); }
  bool failed() const { return failed_; }

 private:
  void Line(const char* tag, const std::string& step, const std::string& detail) {
    std::string padded = step;
    padded.resize(std::max<size_t>(step.size(), 12), ' ');
    out_ << "[" << tag << "] " << padded << " " << detail << "\n" << std::flush;
  }

  std::ostream& out_;
  bool failed_ = false;
};

std::string RandomSuffix() {
  std::random_device device;
  std::uniform_int_distribution<int> digit(0, 15);
  std::string out;
  for (int i = 0; i < 12; ++i) out += "0123456789abcdef"[digit(device)];
  return out;
}

std::string Quoted(const std::string& s) { return "'" + s + "'"; }

}  // namespace

int RunCheck(const CheckArgs& args, const StoreCli& cli, const EnvLookup& env, std::ostream& out) {
  StepPrinter steps(out);
  const char* kRemaining[] = {"endpoint", "bucket",     "list",  "write",
                              "read",     "list-after", "delete"};
  auto skip_from = [&](size_t first) {
    for (size_t i = first; i < std::size(kRemaining); ++i) {
      if (args.read_only && i >= 3) break;
      steps.Skip(kRemaining[i]);
    }
    return 1;
  };

  Result<S3Url> url = ParseS3Url(args.url);
  if (!url.ok()) {
    steps.Fail("arguments", url.status().message());
    return 2;
  }
  Result<S3Options> options = cli.ToOptions(url->bucket, env);
  if (!options.ok()) {
    steps.Fail("arguments", options.status().message());
    return 2;
  }

  Result<Credentials> creds = ResolveCredentials(cli.ToCredentialOptions(), env);
  if (!creds.ok()) {
    steps.Fail("credentials", creds.status().message());
    return skip_from(0);
  }
  steps.Ok("credentials",
           "access key " + MaskAccessKey(creds->access_key_id) + " from " + creds->source);
  options->credentials = *creds;

  Result<std::unique_ptr<S3Store>> created = S3Store::Create(*options);
  if (!created.ok()) {  // invalid options: a usage error
    steps.Fail("endpoint", created.status().message());
    skip_from(1);
    return 2;
  }
  S3Store& store = **created;
  auto explain = [&](const Status& st) {
    return ExplainStoreError(st, *creds, store.options(), store.endpoint_url());
  };

  Result<int> probe = store.ProbeEndpoint();
  if (!probe.ok()) {
    steps.Fail("endpoint", explain(probe.status()));
    return skip_from(1);
  }
  steps.Ok("endpoint", store.endpoint_url() + " answers (HTTP " + std::to_string(*probe) + "); " +
                           store.Describe());

  Result<ListPage> any = store.List(ListOptions{.max_keys = 1});
  if (!any.ok()) {
    steps.Fail("bucket", explain(any.status()));
    return skip_from(2);
  }
  steps.Ok("bucket", "bucket " + Quoted(url->bucket) + " exists and is readable");

  Result<ListPage> listed =
      store.List(ListOptions{.prefix = url->prefix, .delimiter = "/", .max_keys = 1000});
  if (!listed.ok()) {
    steps.Fail("list", explain(listed.status()));
    return skip_from(3);
  }
  steps.Ok("list", "prefix " + Quoted(url->prefix.empty() ? "/" : url->prefix) + ": " +
                       std::to_string(listed->objects.size()) + " files, " +
                       std::to_string(listed->common_prefixes.size()) + " directories" +
                       (listed->truncated ? " on the first page (more follow)" : ""));
  if (args.read_only) return 0;

  const std::string probe_key = url->prefix + ".strata-check-" + RandomSuffix();
  const std::string body = "strata check probe " + probe_key + "\n";
  Result<PutResult> put = store.Put(probe_key, body, PutOptions{.content_type = "text/plain"});
  if (!put.ok()) {
    steps.Fail("write", explain(put.status()) + " (use --read-only to skip the write test)");
    return skip_from(4);
  }
  steps.Ok("write", "wrote " + Quoted(probe_key) + " (" + std::to_string(body.size()) + " bytes)");

  Result<GetResult> got = store.Get(probe_key, GetOptions{});
  if (!got.ok()) {
    steps.Fail("read", explain(got.status()));
  } else if (got->body != body || got->info.etag != put->etag) {
    steps.Fail("read", "read back different bytes or ETag than written: read-after-write broken");
  } else {
    steps.Ok("read", "read back " + std::to_string(got->body.size()) + " identical bytes");
  }

  Result<ListPage> after = store.List(ListOptions{.prefix = probe_key, .max_keys = 10});
  if (!after.ok()) {
    steps.Fail("list-after", explain(after.status()));
  } else if (std::none_of(after->objects.begin(), after->objects.end(),
                          [&](const ObjectInfo& o) { return o.key == probe_key; })) {
    steps.Fail("list-after", "the probe object is missing from the listing");
  } else {
    steps.Ok("list-after", "the probe object is listed");
  }

  Status deleted = store.Delete(probe_key);
  Result<ObjectInfo> gone = deleted.ok() ? store.Head(probe_key) : Result<ObjectInfo>(deleted);
  if (!deleted.ok()) {
    steps.Fail("delete", explain(deleted) + ": remove " + Quoted(probe_key) + " by hand");
  } else if (gone.ok()) {
    steps.Fail("delete", "the probe object is still there after DELETE");
  } else if (!gone.status().IsNotFound()) {
    steps.Fail("delete", explain(gone.status()));
  } else {
    steps.Ok("delete", "deleted the probe object; HEAD now says not found");
  }
  return steps.failed() ? 1 : 0;
}

}  // namespace strata
