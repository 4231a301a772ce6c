#include "tests/conformance/store_conformance.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <span>
#include <thread>
#include <utility>
#include <vector>

namespace strata {
namespace {

const Status& StatusOf(const Status& status) { return status; }
template <typename T>
const Status& StatusOf(const Result<T>& result) {
  return result.status();
}

#define EXPECT_OK(expr)                                            \
  do {                                                             \
    const auto& expect_ok_value_ = (expr);                         \
    EXPECT_TRUE(StatusOf(expect_ok_value_).ok())                   \
        << #expr << ": " << StatusOf(expect_ok_value_).ToString(); \
  } while (0)

#define ASSERT_OK(expr)                                            \
  do {                                                             \
    const auto& assert_ok_value_ = (expr);                         \
    ASSERT_TRUE(StatusOf(assert_ok_value_).ok())                   \
        << #expr << ": " << StatusOf(assert_ok_value_).ToString(); \
  } while (0)

#define EXPECT_KIND(expr, expected_kind)                                                        \
  do {                                                                                          \
    const auto& expect_kind_value_ = (expr);                                                    \
    EXPECT_EQ(ErrorKindName(StatusOf(expect_kind_value_).kind()), ErrorKindName(expected_kind)) \
        << #expr << ": " << StatusOf(expect_kind_value_).ToString();                            \
  } while (0)

constexpr uint64_t kMiB = 1024 * 1024;

// `size` bytes of every value, NULs included, different for each seed.
std::string BinaryBody(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string body(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    body[i] = (i % 7 == 0) ? '\0' : static_cast<char>(rng() & 0xff);
  }
  return body;
}

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Everything a listing returned, following continuation tokens.
struct FullListing {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> common_prefixes;
  std::vector<std::string> entries;  // keys and common prefixes, in the order returned
  int pages = 0;
};

FullListing ListAll(ObjectStore& store, ListOptions options) {
  FullListing all;
  while (true) {
    Result<ListPage> page = store.List(options);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) return all;
    ++all.pages;
    EXPECT_LE(page->objects.size() + page->common_prefixes.size(),
              static_cast<size_t>(options.max_keys));
    // Within a page, objects and prefixes interleave in key order.
    std::vector<std::string> entries;
    for (const ObjectInfo& info : page->objects) entries.push_back(info.key);
    for (const std::string& p : page->common_prefixes) entries.push_back(p);
    std::sort(entries.begin(), entries.end());
    all.entries.insert(all.entries.end(), entries.begin(), entries.end());
    all.objects.insert(all.objects.end(), page->objects.begin(), page->objects.end());
    all.common_prefixes.insert(all.common_prefixes.end(), page->common_prefixes.begin(),
                               page->common_prefixes.end());
    if (!page->truncated) return all;
    EXPECT_FALSE(page->next_continuation_token.empty());
    if (page->next_continuation_token.empty() || all.pages > 10000) return all;
    options.continuation_token = page->next_continuation_token;
  }
}

std::vector<std::string> Keys(const std::vector<ObjectInfo>& objects) {
  std::vector<std::string> keys;
  for (const ObjectInfo& info : objects) keys.push_back(info.key);
  return keys;
}

// The keys (under a test's base) the listing tests use: files, a directory marker with a file
// under it, a directory with no marker, a nested directory.
std::vector<std::string> ListingNames() {
  return {"a.txt", "b.txt", "dir1/", "dir1/x", "dir2/y", "dir2/z/w", "e"};
}

// Runs `body(i)` for i in [0, count) on `threads` threads.
void ParallelFor(int count, int threads, const std::function<void(int)>& body) {
  std::atomic<int> next{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = next++; i < count; i = next++) body(i);
    });
  }
  for (std::thread& worker : workers) worker.join();
}

}  // namespace

// ---- StoreUnderTest and the fixture ----

StoreUnderTest::StoreUnderTest(std::unique_ptr<ObjectStore> owned, ObjectStore* store,
                               std::string prefix, std::function<void()> teardown)
    : owned_(std::move(owned)),
      store_(store),
      prefix_(std::move(prefix)),
      teardown_(std::move(teardown)) {}

std::unique_ptr<StoreUnderTest> StoreUnderTest::Owning(std::unique_ptr<ObjectStore> store,
                                                       std::string prefix,
                                                       std::function<void()> teardown) {
  ObjectStore* raw = store.get();
  return std::unique_ptr<StoreUnderTest>(
      new StoreUnderTest(std::move(store), raw, std::move(prefix), std::move(teardown)));
}

std::unique_ptr<StoreUnderTest> StoreUnderTest::Borrowing(ObjectStore& store, std::string prefix) {
  return std::unique_ptr<StoreUnderTest>(
      new StoreUnderTest(nullptr, &store, std::move(prefix), nullptr));
}

StoreUnderTest::~StoreUnderTest() {
  owned_.reset();
  if (teardown_) teardown_();
}

void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

std::string StoreFactoryName(const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

std::string UniqueTestPrefix(std::string_view root) {
  std::string name = "test";
  if (const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
    name = std::string(info->test_suite_name()) + "." + info->name();
  }
  for (char& c : name) {
    if (c == '/') c = '.';
  }
  std::random_device random;
  char tag[20];
  std::snprintf(tag, sizeof tag, "%08x%08x", random(), random());
  return std::string(root) + name + "-" + tag + "/";
}

void StoreConformanceTest::SetUp() {
  sut_ = GetParam().make();
  // A factory returns nullptr without a failure when its store is not configured here (the S3
  // one without STRATA_TEST_ENDPOINT): skip rather than fail.
  if (sut_ == nullptr && !HasFailure()) GTEST_SKIP() << GetParam().name << " store not available";
  ASSERT_NE(sut_, nullptr);
  ASSERT_FALSE(sut_->prefix().empty());
  ASSERT_EQ(sut_->prefix().back(), '/');
}

void StoreConformanceTest::TearDown() {
  if (!sut_) return;
  ListOptions options;
  options.prefix = prefix();
  while (true) {
    Result<ListPage> page = store().List(options);
    if (!page.ok()) break;
    std::vector<std::string> keys = Keys(page->objects);
    if (!keys.empty()) {
      Result<std::vector<DeleteFailure>> deleted = store().DeleteBatch(keys);
      IgnoreError(deleted.status(), "best-effort cleanup; the prefix is unique to this test");
    }
    if (!page->truncated) break;
    options.continuation_token = page->next_continuation_token;
  }
  Result<std::vector<MultipartUpload>> uploads = store().ListMultipartUploads(prefix());
  if (uploads.ok()) {
    for (const MultipartUpload& upload : *uploads) {
      IgnoreError(store().AbortMultipartUpload(upload.key, upload.upload_id), "cleanup");
    }
  }
  sut_.reset();
}

std::string StoreConformanceTest::Key(std::string_view name) const {
  return prefix() + std::string(name);
}

// ---- objects ----

TEST_P(StoreConformanceTest, PutGetHeadRoundTrip) {
  const std::string key = Key("round/trip.bin");
  const std::string body = BinaryBody(4096, 1);
  PutOptions put;
  put.content_type = "text/plain";
  put.metadata = {{"mode", "33188"}, {"uid", "1000"}, {"mtime", "1700000000.5"}};
  const auto before = std::chrono::system_clock::now();
  Result<PutResult> written = store().Put(key, body, put);
  ASSERT_OK(written);
  EXPECT_FALSE(written->etag.empty());
  EXPECT_EQ(written->etag.find('"'), std::string::npos);

  Result<ObjectInfo> head = store().Head(key);
  ASSERT_OK(head);
  EXPECT_EQ(head->key, key);
  EXPECT_EQ(head->size, body.size());
  EXPECT_EQ(head->etag, written->etag);
  EXPECT_EQ(head->content_type, "text/plain");
  EXPECT_EQ(head->metadata, put.metadata);
  // Clocks of a remote server may differ a little from ours.
  EXPECT_GT(head->last_modified, before - std::chrono::minutes(10));
  EXPECT_LT(head->last_modified, before + std::chrono::minutes(10));

  Result<GetResult> got = store().Get(key, {});
  ASSERT_OK(got);
  EXPECT_EQ(got->body, body);
  EXPECT_EQ(got->info.size, body.size());
  EXPECT_EQ(got->info.etag, written->etag);
  EXPECT_EQ(got->info.content_type, "text/plain");
  EXPECT_EQ(got->info.metadata, put.metadata);
}

TEST_P(StoreConformanceTest, DefaultContentTypeAndMd5Etag) {
  const std::string key = Key("plain");
  Result<PutResult> written = store().Put(key, "hello world", {});
  ASSERT_OK(written);
  EXPECT_EQ(written->etag, "5eb63bbbe01eeed093cb22bb8f5acdc3");
  Result<ObjectInfo> head = store().Head(key);
  ASSERT_OK(head);
  EXPECT_EQ(head->content_type, "binary/octet-stream");
  EXPECT_TRUE(head->metadata.empty());
}

TEST_P(StoreConformanceTest, BinaryBodyWithEveryByte) {
  std::string body;
  for (int round = 0; round < 4; ++round) {
    for (int c = 0; c < 256; ++c) body.push_back(static_cast<char>(c));
  }
  body += std::string(100, '\0');
  const std::string key = Key("binary");
  ASSERT_OK(store().Put(key, body, {}));
  Result<GetResult> got = store().Get(key, {});
  ASSERT_OK(got);
  EXPECT_EQ(got->body, body);
  EXPECT_EQ(got->info.size, body.size());
}

TEST_P(StoreConformanceTest, RangedGets) {
  const std::string key = Key("ranged");
  std::string body;
  for (int i = 0; i < 100; ++i) body.push_back(static_cast<char>(i));
  ASSERT_OK(store().Put(key, body, {}));

  struct Case {
    uint64_t offset;
    std::optional<uint64_t> length;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {10, 20, body.substr(10, 20)},        // middle
      {0, 1, body.substr(0, 1)},            // first byte
      {99, 1, body.substr(99, 1)},          // last byte
      {90, std::nullopt, body.substr(90)},  // to the end
      {95, 50, body.substr(95)},            // running past the end: cut
      {0, std::nullopt, body},              // whole, as a range
  };
  for (const Case& c : cases) {
    GetOptions options;
    options.range = ByteRange{c.offset, c.length};
    Result<GetResult> got = store().Get(key, options);
    ASSERT_OK(got);
    EXPECT_EQ(got->body, c.expected) << "offset " << c.offset;
    EXPECT_EQ(got->info.size, body.size()) << "size is the whole object's";
  }
  for (uint64_t offset : {100, 101, 1000}) {
    GetOptions options;
    options.range = ByteRange{offset, std::nullopt};
    EXPECT_KIND(store().Get(key, options), ErrorKind::kInvalidArgument);
    options.range = ByteRange{offset, 10};
    EXPECT_KIND(store().Get(key, options), ErrorKind::kInvalidArgument);
  }
}

TEST_P(StoreConformanceTest, GetIntoCallersBuffer) {
  const std::string key = Key("get-into");
  const std::string body = BinaryBody(1000, 6);
  ASSERT_OK(store().Put(key, body, {}));
  std::vector<char> buffer(2000, 'z');
  auto view = [&](uint64_t n) { return std::string(buffer.data(), n); };

  Result<GetIntoResult> got = store().GetInto(key, {}, std::span<char>(buffer));
  ASSERT_OK(got);
  EXPECT_EQ(got->bytes, body.size());
  EXPECT_EQ(got->info.size, body.size());
  EXPECT_EQ(view(got->bytes), body);

  GetOptions options;
  options.range = ByteRange{100, 50};
  got = store().GetInto(key, options, std::span<char>(buffer));
  ASSERT_OK(got);
  EXPECT_EQ(view(got->bytes), body.substr(100, 50));
  EXPECT_EQ(got->info.size, body.size());

  options.range = ByteRange{990, 50};  // cut at the end
  got = store().GetInto(key, options, std::span<char>(buffer));
  ASSERT_OK(got);
  EXPECT_EQ(view(got->bytes), body.substr(990));

  std::vector<char> small(10);
  EXPECT_KIND(store().GetInto(key, {}, std::span<char>(small)), ErrorKind::kInvalidArgument);
  EXPECT_KIND(store().GetInto(Key("get-into-missing"), {}, std::span<char>(buffer)),
              ErrorKind::kNotFound);
}

TEST_P(StoreConformanceTest, ZeroLengthObject) {
  const std::string key = Key("empty");
  Result<PutResult> written = store().Put(key, "", {});
  ASSERT_OK(written);
  EXPECT_EQ(written->etag, "d41d8cd98f00b204e9800998ecf8427e");
  Result<ObjectInfo> head = store().Head(key);
  ASSERT_OK(head);
  EXPECT_EQ(head->size, 0u);
  Result<GetResult> got = store().Get(key, {});
  ASSERT_OK(got);
  EXPECT_EQ(got->body, "");
  EXPECT_EQ(got->info.size, 0u);
  // S3 answers 416 to any range on an empty object.
  GetOptions ranged;
  ranged.range = ByteRange{0, std::nullopt};
  EXPECT_KIND(store().Get(key, ranged), ErrorKind::kInvalidArgument);
  ranged.range = ByteRange{0, 10};
  EXPECT_KIND(store().Get(key, ranged), ErrorKind::kInvalidArgument);
}

TEST_P(StoreConformanceTest, GetIfMatch) {
  const std::string key = Key("if-match");
  Result<PutResult> written = store().Put(key, "version one", {});
  ASSERT_OK(written);
  GetOptions options;
  options.if_match = written->etag;
  Result<GetResult> got = store().Get(key, options);
  ASSERT_OK(got);
  EXPECT_EQ(got->body, "version one");
  options.range = ByteRange{8, std::nullopt};
  got = store().Get(key, options);
  ASSERT_OK(got);
  EXPECT_EQ(got->body, "one");

  ASSERT_OK(store().Put(key, "version two", {}));
  EXPECT_KIND(store().Get(key, options), ErrorKind::kPreconditionFailed);
  options.range.reset();
  EXPECT_KIND(store().Get(key, options), ErrorKind::kPreconditionFailed);
}

TEST_P(StoreConformanceTest, PutIfNoneMatchOnlyCreates) {
  const std::string key = Key("create-only");
  PutOptions create;
  create.if_none_match = true;
  ASSERT_OK(store().Put(key, "first", create));
  EXPECT_KIND(store().Put(key, "second", create), ErrorKind::kPreconditionFailed);
  Result<GetResult> got = store().Get(key, {});
  ASSERT_OK(got);
  EXPECT_EQ(got->body, "first");
}

TEST_P(StoreConformanceTest, PutIfMatchOnlyReplacesThatVersion) {
  const std::string key = Key("replace-if");
  Result<PutResult> first = store().Put(key, "first", {});
  ASSERT_OK(first);
  PutOptions replace;
  replace.if_match = first->etag;
  Result<PutResult> second = store().Put(key, "second", replace);
  ASSERT_OK(second);
  // `first` is stale now.
  EXPECT_KIND(store().Put(key, "third", replace), ErrorKind::kPreconditionFailed);
  Result<GetResult> got = store().Get(key, {});
  ASSERT_OK(got);
  EXPECT_EQ(got->body, "second");
  EXPECT_EQ(got->info.etag, second->etag);
}

TEST_P(StoreConformanceTest, OverwriteChangesEtagAndBody) {
  const std::string key = Key("overwrite");
  Result<PutResult> one = store().Put(key, "one", {});
  Result<PutResult> two = store().Put(key, "two, longer", {});
  ASSERT_OK(one);
  ASSERT_OK(two);
  EXPECT_NE(one->etag, two->etag);
  Result<ObjectInfo> head = store().Head(key);
  ASSERT_OK(head);
  EXPECT_EQ(head->etag, two->etag);
  EXPECT_EQ(head->size, 11u);
  Result<GetResult> got = store().Get(key, {});
  ASSERT_OK(got);
  EXPECT_EQ(got->body, "two, longer");
}

TEST_P(StoreConformanceTest, MissingKey) {
  const std::string key = Key("missing");
  EXPECT_KIND(store().Head(key), ErrorKind::kNotFound);
  EXPECT_KIND(store().Get(key, {}), ErrorKind::kNotFound);
  GetOptions ranged;
  ranged.range = ByteRange{0, 10};
  EXPECT_KIND(store().Get(key, ranged), ErrorKind::kNotFound);
  CopyOptions copy;
  EXPECT_KIND(store().Copy(key, Key("copy-of-missing"), copy), ErrorKind::kNotFound);
}

TEST_P(StoreConformanceTest, DeleteRemovesAndMissingIsOk) {
  const std::string key = Key("doomed");
  ASSERT_OK(store().Put(key, "bye", {}));
  EXPECT_OK(store().Delete(key));
  EXPECT_KIND(store().Head(key), ErrorKind::kNotFound);
  EXPECT_OK(store().Delete(key));
  EXPECT_OK(store().Delete(Key("never-existed")));
}

TEST_P(StoreConformanceTest, UnusualKeys) {
  std::vector<std::string> names = {
      "with space.txt",
      "ünï cødé/文件.txt",
      "a+b",
      "100%",
      "%41%2F",
      "a=b&c=d",
      "what?",
      "#hash",
      "a//b",
      "trailing/",
      "~tilde",
      "semi;colon",
      "quote'\"",
      "star*",
      "emoji 😀",
      "paren(1)",
      "comma,",
      "back\\slash",
      "at@dollar$",
  };
  std::vector<std::string> keys;
  for (const std::string& name : names) keys.push_back(Key("odd/" + name));
  std::string long_key = Key("long/");
  ASSERT_LT(long_key.size(), 1024u);
  long_key += std::string(1024 - long_key.size(), 'k');
  ASSERT_EQ(long_key.size(), 1024u);
  keys.push_back(long_key);

  for (const std::string& key : keys) {
    PutOptions put;
    put.metadata = {{"name", "x"}};
    ASSERT_OK(store().Put(key, "body of " + key, put));
  }
  for (const std::string& key : keys) {
    Result<ObjectInfo> head = store().Head(key);
    ASSERT_OK(head);
    EXPECT_EQ(head->key, key);
    Result<GetResult> got = store().Get(key, {});
    ASSERT_OK(got);
    EXPECT_EQ(got->body, "body of " + key);
  }
  ListOptions list;
  list.prefix = Key("odd/");
  FullListing listed = ListAll(store(), list);
  std::vector<std::string> expected(keys.begin(), keys.end() - 1);
  std::sort(expected.begin(), expected.end());  // bytewise, as S3 orders keys
  EXPECT_EQ(Keys(listed.objects), expected);

  Result<std::vector<DeleteFailure>> failures = store().DeleteBatch(keys);
  ASSERT_OK(failures);
  EXPECT_TRUE(failures->empty());
  for (const std::string& key : keys) EXPECT_KIND(store().Head(key), ErrorKind::kNotFound);
}

// ---- listing ----

TEST_P(StoreConformanceTest, ListWithDelimiter) {
  const std::string base = Key("list/");
  std::map<std::string, std::string> etags;
  for (const std::string& name : ListingNames()) {
    Result<PutResult> written = store().Put(base + name, "data:" + name, {});
    ASSERT_OK(written);
    etags[base + name] = written->etag;
  }

  ListOptions options;
  options.prefix = base;
  options.delimiter = "/";
  Result<ListPage> page = store().List(options);
  ASSERT_OK(page);
  EXPECT_FALSE(page->truncated);
  EXPECT_EQ(Keys(page->objects),
            (std::vector<std::string>{base + "a.txt", base + "b.txt", base + "e"}));
  EXPECT_EQ(page->common_prefixes, (std::vector<std::string>{base + "dir1/", base + "dir2/"}));
  for (const ObjectInfo& info : page->objects) {
    EXPECT_EQ(info.etag, etags[info.key]);
    EXPECT_EQ(info.size, ("data:" + info.key.substr(base.size())).size());
  }

  // A directory marker is an object inside its own prefix.
  options.prefix = base + "dir1/";
  page = store().List(options);
  ASSERT_OK(page);
  EXPECT_EQ(Keys(page->objects), (std::vector<std::string>{base + "dir1/", base + "dir1/x"}));
  EXPECT_TRUE(page->common_prefixes.empty());

  options.prefix = base + "dir2/";
  page = store().List(options);
  ASSERT_OK(page);
  EXPECT_EQ(Keys(page->objects), (std::vector<std::string>{base + "dir2/y"}));
  EXPECT_EQ(page->common_prefixes, (std::vector<std::string>{base + "dir2/z/"}));

  // A prefix that is not a whole path segment.
  options.prefix = base + "dir";
  page = store().List(options);
  ASSERT_OK(page);
  EXPECT_TRUE(page->objects.empty());
  EXPECT_EQ(page->common_prefixes, (std::vector<std::string>{base + "dir1/", base + "dir2/"}));

  options.prefix = base + "nothing-here/";
  page = store().List(options);
  ASSERT_OK(page);
  EXPECT_TRUE(page->objects.empty());
  EXPECT_TRUE(page->common_prefixes.empty());
  EXPECT_FALSE(page->truncated);
}

TEST_P(StoreConformanceTest, ListFlatWithPrefixAndStartAfter) {
  const std::string base = Key("flat/");
  std::vector<std::string> all;
  for (const std::string& name : ListingNames()) {
    ASSERT_OK(store().Put(base + name, "x", {}));
    all.push_back(base + name);
  }
  ASSERT_OK(store().Put(Key("flat-sibling"), "x", {}));  // shares the prefix without the '/'
  std::sort(all.begin(), all.end());

  ListOptions options;
  options.prefix = base;
  Result<ListPage> page = store().List(options);
  ASSERT_OK(page);
  EXPECT_EQ(Keys(page->objects), all);
  EXPECT_TRUE(page->common_prefixes.empty());
  for (const ObjectInfo& info : page->objects) {
    EXPECT_EQ(info.size, 1u);
    EXPECT_FALSE(info.etag.empty());
  }

  options.start_after = base + "b.txt";
  page = store().List(options);
  ASSERT_OK(page);
  EXPECT_EQ(Keys(page->objects),
            (std::vector<std::string>{base + "dir1/", base + "dir1/x", base + "dir2/y",
                                      base + "dir2/z/w", base + "e"}));

  options.delimiter = "/";
  page = store().List(options);
  ASSERT_OK(page);
  EXPECT_EQ(Keys(page->objects), (std::vector<std::string>{base + "e"}));
  EXPECT_EQ(page->common_prefixes, (std::vector<std::string>{base + "dir1/", base + "dir2/"}));

  // Every key of dir1/ is at or before start_after, so dir1/ is not reported again.
  options.start_after = base + "dir1/x";
  page = store().List(options);
  ASSERT_OK(page);
  EXPECT_EQ(Keys(page->objects), (std::vector<std::string>{base + "e"}));
  EXPECT_EQ(page->common_prefixes, (std::vector<std::string>{base + "dir2/"}));

  options.start_after = base + "zzz";
  page = store().List(options);
  ASSERT_OK(page);
  EXPECT_TRUE(page->objects.empty());
  EXPECT_TRUE(page->common_prefixes.empty());
}

TEST_P(StoreConformanceTest, ListPaginationWithMaxKeys) {
  const std::string base = Key("pages/");
  std::vector<std::string> all;
  for (const std::string& name : ListingNames()) {
    ASSERT_OK(store().Put(base + name, "x", {}));
    all.push_back(base + name);
  }
  std::sort(all.begin(), all.end());

  for (int max_keys : {1, 2, 3}) {
    SCOPED_TRACE("max_keys " + std::to_string(max_keys));
    ListOptions options;
    options.prefix = base;
    options.max_keys = max_keys;
    FullListing flat = ListAll(store(), options);
    EXPECT_EQ(flat.entries, all);
    EXPECT_GE(flat.pages, static_cast<int>((all.size() + max_keys - 1) / max_keys));

    // Common prefixes count toward max_keys and are never repeated across pages.
    options.delimiter = "/";
    FullListing grouped = ListAll(store(), options);
    EXPECT_EQ(grouped.entries,
              (std::vector<std::string>{base + "a.txt", base + "b.txt", base + "dir1/",
                                        base + "dir2/", base + "e"}));
    EXPECT_EQ(grouped.common_prefixes, (std::vector<std::string>{base + "dir1/", base + "dir2/"}));
  }

  ListOptions first;
  first.prefix = base;
  first.max_keys = 2;
  Result<ListPage> page = store().List(first);
  ASSERT_OK(page);
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->objects.size(), 2u);
  EXPECT_FALSE(page->next_continuation_token.empty());
}

TEST_P(StoreConformanceTest, ListPastOneThousandKeys) {
  constexpr int kCount = 1100;
  const std::string base = Key("many/");
  std::vector<std::string> keys;
  for (int i = 0; i < kCount; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "obj-%05d", i);
    keys.push_back(base + name);
  }
  std::atomic<int> failures{0};
  ParallelFor(kCount, 8, [&](int i) {
    if (!store().Put(keys[i], std::to_string(i), {}).ok()) ++failures;
  });
  ASSERT_EQ(failures.load(), 0);

  ListOptions options;
  options.prefix = base;
  Result<ListPage> first = store().List(options);
  ASSERT_OK(first);
  EXPECT_TRUE(first->truncated);
  EXPECT_LE(first->objects.size(), 1000u);

  FullListing all = ListAll(store(), options);
  EXPECT_GE(all.pages, 2);
  ASSERT_EQ(all.objects.size(), keys.size());
  EXPECT_EQ(Keys(all.objects), keys);  // every key once, in order across pages

  for (size_t start = 0; start < keys.size(); start += 1000) {
    std::vector<std::string> batch(keys.begin() + start,
                                   keys.begin() + std::min(keys.size(), start + 1000));
    Result<std::vector<DeleteFailure>> deleted = store().DeleteBatch(batch);
    ASSERT_OK(deleted);
    EXPECT_TRUE(deleted->empty());
  }
  Result<ListPage> after = store().List(options);
  ASSERT_OK(after);
  EXPECT_TRUE(after->objects.empty());
}

// ---- copy and batch delete ----

TEST_P(StoreConformanceTest, CopyKeepsOrReplacesMetadata) {
  const std::string source = Key("copy/source");
  const std::string body = BinaryBody(3000, 2);
  PutOptions put;
  put.content_type = "text/plain";
  put.metadata = {{"color", "blue"}, {"mode", "33188"}};
  Result<PutResult> written = store().Put(source, body, put);
  ASSERT_OK(written);

  const std::string kept = Key("copy/kept");
  Result<PutResult> copied = store().Copy(source, kept, {});
  ASSERT_OK(copied);
  EXPECT_EQ(copied->etag, written->etag);
  Result<GetResult> got = store().Get(kept, {});
  ASSERT_OK(got);
  EXPECT_EQ(got->body, body);
  EXPECT_EQ(got->info.content_type, "text/plain");
  EXPECT_EQ(got->info.metadata, put.metadata);

  const std::string replaced = Key("copy/replaced");
  CopyOptions replace;
  replace.directive = MetadataDirective::kReplace;
  replace.content_type = "application/json";
  replace.metadata = {{"shape", "round"}};
  ASSERT_OK(store().Copy(source, replaced, replace));
  got = store().Get(replaced, {});
  ASSERT_OK(got);
  EXPECT_EQ(got->body, body);
  EXPECT_EQ(got->info.content_type, "application/json");
  EXPECT_EQ(got->info.metadata, replace.metadata);

  // Onto itself with new metadata: how attributes change without re-uploading (chmod).
  replace.metadata = {{"mode", "33261"}};
  ASSERT_OK(store().Copy(source, source, replace));
  got = store().Get(source, {});
  ASSERT_OK(got);
  EXPECT_EQ(got->body, body);
  EXPECT_EQ(got->info.metadata, replace.metadata);
}

TEST_P(StoreConformanceTest, CopyIfMatch) {
  if (GetParam().deviations.ignores_copy_source_if_match)
    GTEST_SKIP() << "the server ignores x-amz-copy-source-if-match";
  const std::string source = Key("copy-if/source");
  Result<PutResult> written = store().Put(source, "payload", {});
  ASSERT_OK(written);
  CopyOptions options;
  options.if_match = "0123456789abcdef0123456789abcdef";
  EXPECT_KIND(store().Copy(source, Key("copy-if/dest"), options), ErrorKind::kPreconditionFailed);
  EXPECT_KIND(store().Head(Key("copy-if/dest")), ErrorKind::kNotFound);
  options.if_match = written->etag;
  ASSERT_OK(store().Copy(source, Key("copy-if/dest"), options));
  Result<GetResult> got = store().Get(Key("copy-if/dest"), {});
  ASSERT_OK(got);
  EXPECT_EQ(got->body, "payload");
}

TEST_P(StoreConformanceTest, DeleteBatch) {
  std::vector<std::string> keys;
  for (int i = 0; i < 5; ++i) {
    keys.push_back(Key("batch/" + std::to_string(i)));
    ASSERT_OK(store().Put(keys.back(), "x", {}));
  }
  ASSERT_OK(store().Put(Key("batch/survivor"), "x", {}));
  std::vector<std::string> doomed = keys;
  doomed.push_back(Key("batch/never-existed"));
  Result<std::vector<DeleteFailure>> failures = store().DeleteBatch(doomed);
  ASSERT_OK(failures);
  for (const DeleteFailure& failure : *failures) {
    ADD_FAILURE() << failure.key << ": " << failure.status.ToString();
  }
  for (const std::string& key : keys) EXPECT_KIND(store().Head(key), ErrorKind::kNotFound);
  EXPECT_OK(store().Head(Key("batch/survivor")));
  ListOptions options;
  options.prefix = Key("batch/");
  Result<ListPage> page = store().List(options);
  ASSERT_OK(page);
  EXPECT_EQ(Keys(page->objects), (std::vector<std::string>{Key("batch/survivor")}));
}

// ---- multipart ----

TEST_P(StoreConformanceTest, MultipartUploadRoundTrip) {
  const std::string key = Key("multipart/object");
  PutOptions put;
  put.content_type = "application/x-test";
  put.metadata = {{"mode", "33188"}};
  Result<std::string> id = store().CreateMultipartUpload(key, put);
  ASSERT_OK(id);
  EXPECT_FALSE(id->empty());

  const std::string part1 = BinaryBody(5 * kMiB, 3);  // S3's minimum for all but the last part
  const std::string part2 = BinaryBody(1000, 4);
  Result<PartInfo> p1 = store().UploadPart(key, *id, 1, part1);
  ASSERT_OK(p1);
  Result<PartInfo> p2 = store().UploadPart(key, *id, 2, part2);
  ASSERT_OK(p2);
  EXPECT_EQ(p1->part_number, 1);
  EXPECT_EQ(p2->part_number, 2);
  EXPECT_EQ(p1->size, part1.size());
  EXPECT_EQ(p2->size, part2.size());
  EXPECT_NE(p1->etag, p2->etag);

  Result<std::vector<PartInfo>> listed = store().ListParts(key, *id);
  ASSERT_OK(listed);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].part_number, 1);
  EXPECT_EQ((*listed)[0].etag, p1->etag);
  EXPECT_EQ((*listed)[0].size, part1.size());
  EXPECT_EQ((*listed)[1].part_number, 2);
  EXPECT_EQ((*listed)[1].etag, p2->etag);
  EXPECT_EQ((*listed)[1].size, part2.size());

  Result<std::vector<MultipartUpload>> uploads = store().ListMultipartUploads(Key("multipart/"));
  ASSERT_OK(uploads);
  ASSERT_EQ(uploads->size(), 1u);
  EXPECT_EQ((*uploads)[0].key, key);
  EXPECT_EQ((*uploads)[0].upload_id, *id);

  // Not visible before completion.
  EXPECT_KIND(store().Head(key), ErrorKind::kNotFound);

  Result<PutResult> done = store().CompleteMultipartUpload(key, *id, {*p1, *p2});
  ASSERT_OK(done);
  ASSERT_EQ(done->etag.size(), 34u) << done->etag;
  EXPECT_TRUE(done->etag.ends_with("-2")) << done->etag;
  EXPECT_TRUE(IsLowerHex(std::string_view(done->etag).substr(0, 32))) << done->etag;

  Result<GetResult> got = store().Get(key, {});
  ASSERT_OK(got);
  EXPECT_EQ(got->info.size, part1.size() + part2.size());
  EXPECT_TRUE(got->body == part1 + part2) << "assembled body differs";
  EXPECT_EQ(got->info.etag, done->etag);
  EXPECT_EQ(got->info.content_type, "application/x-test");
  EXPECT_EQ(got->info.metadata, put.metadata);

  GetOptions across;  // a range spanning the part boundary
  across.range = ByteRange{5 * kMiB - 10, 20};
  got = store().Get(key, across);
  ASSERT_OK(got);
  EXPECT_EQ(got->body, (part1 + part2).substr(5 * kMiB - 10, 20));

  uploads = store().ListMultipartUploads(Key("multipart/"));
  ASSERT_OK(uploads);
  EXPECT_TRUE(uploads->empty());
  EXPECT_KIND(store().ListParts(key, *id), ErrorKind::kNotFound);
}

TEST_P(StoreConformanceTest, MultipartAbort) {
  const std::string key = Key("aborted/object");
  Result<std::string> id = store().CreateMultipartUpload(key, {});
  ASSERT_OK(id);
  ASSERT_OK(store().UploadPart(key, *id, 1, "some bytes"));
  EXPECT_OK(store().AbortMultipartUpload(key, *id));
  Result<std::vector<MultipartUpload>> uploads = store().ListMultipartUploads(Key("aborted/"));
  ASSERT_OK(uploads);
  EXPECT_TRUE(uploads->empty());
  EXPECT_KIND(store().ListParts(key, *id), ErrorKind::kNotFound);
  EXPECT_KIND(store().UploadPart(key, *id, 2, "more"), ErrorKind::kNotFound);
  EXPECT_KIND(store().Head(key), ErrorKind::kNotFound);
}

TEST_P(StoreConformanceTest, MultipartRejectsBadPartLists) {
  if (GetParam().deviations.accepts_bad_part_lists)
    GTEST_SKIP() << "the server accepts invalid part lists";
  const std::string key = Key("bad-parts/object");
  Result<std::string> id = store().CreateMultipartUpload(key, {});
  ASSERT_OK(id);
  Result<PartInfo> p1 = store().UploadPart(key, *id, 1, BinaryBody(5 * kMiB, 5));
  Result<PartInfo> p2 = store().UploadPart(key, *id, 2, "tail");
  ASSERT_OK(p1);
  ASSERT_OK(p2);

  PartInfo wrong_etag = *p2;
  wrong_etag.etag = "0123456789abcdef0123456789abcdef";
  EXPECT_KIND(store().CompleteMultipartUpload(key, *id, {*p1, wrong_etag}),
              ErrorKind::kInvalidArgument);
  EXPECT_KIND(store().CompleteMultipartUpload(key, *id, {*p2, *p1}), ErrorKind::kInvalidArgument);
  PartInfo never_uploaded = *p2;
  never_uploaded.part_number = 3;
  EXPECT_KIND(store().CompleteMultipartUpload(key, *id, {*p1, never_uploaded}),
              ErrorKind::kInvalidArgument);
  EXPECT_KIND(store().Head(key), ErrorKind::kNotFound);

  // The upload survives rejected completions.
  Result<PutResult> done = store().CompleteMultipartUpload(key, *id, {*p1, *p2});
  ASSERT_OK(done);
  EXPECT_TRUE(done->etag.ends_with("-2")) << done->etag;
}

TEST_P(StoreConformanceTest, MultipartUnknownUpload) {
  if (GetParam().deviations.unknown_upload_id_is_500)
    GTEST_SKIP() << "the server answers unknown upload ids with HTTP 500";
  const std::string key = Key("no-upload/object");
  const std::string bogus = "2~not-an-upload-id-0123456789";
  EXPECT_KIND(store().UploadPart(key, bogus, 1, "x"), ErrorKind::kNotFound);
  EXPECT_KIND(store().ListParts(key, bogus), ErrorKind::kNotFound);
  EXPECT_KIND(store().CompleteMultipartUpload(key, bogus, {PartInfo{1, "abc", 1}}),
              ErrorKind::kNotFound);
  EXPECT_KIND(store().AbortMultipartUpload(key, bogus), ErrorKind::kNotFound);
}

TEST_P(StoreConformanceTest, ListMultipartUploads) {
  const std::string a = Key("uploads/a");
  const std::string b = Key("uploads/b/c");
  Result<std::string> id_b = store().CreateMultipartUpload(b, {});
  Result<std::string> id_a = store().CreateMultipartUpload(a, {});
  Result<std::string> other = store().CreateMultipartUpload(Key("elsewhere"), {});
  ASSERT_OK(id_a);
  ASSERT_OK(id_b);
  ASSERT_OK(other);
  EXPECT_NE(*id_a, *id_b);

  Result<std::vector<MultipartUpload>> uploads = store().ListMultipartUploads(Key("uploads/"));
  ASSERT_OK(uploads);
  ASSERT_EQ(uploads->size(), 2u);
  EXPECT_EQ((*uploads)[0].key, a);
  EXPECT_EQ((*uploads)[0].upload_id, *id_a);
  EXPECT_EQ((*uploads)[1].key, b);
  EXPECT_EQ((*uploads)[1].upload_id, *id_b);

  uploads = store().ListMultipartUploads(prefix());
  ASSERT_OK(uploads);
  EXPECT_EQ(uploads->size(), 3u);

  EXPECT_OK(store().AbortMultipartUpload(a, *id_a));
  EXPECT_OK(store().AbortMultipartUpload(b, *id_b));
  EXPECT_OK(store().AbortMultipartUpload(Key("elsewhere"), *other));
  uploads = store().ListMultipartUploads(prefix());
  ASSERT_OK(uploads);
  EXPECT_TRUE(uploads->empty());
}

// ---- concurrency ----

TEST_P(StoreConformanceTest, ConcurrentPutsAndGets) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 10;
  constexpr size_t kSize = 4096;
  const std::string shared = Key("concurrent/shared");
  ASSERT_OK(store().Put(shared, std::string(kSize, 'a'), {}));
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string own = Key("concurrent/own-" + std::to_string(t));
      for (int round = 0; round < kRounds; ++round) {
        const std::string body = BinaryBody(kSize, static_cast<uint32_t>(t * 1000 + round));
        if (!store().Put(own, body, {}).ok()) ++errors;
        Result<GetResult> mine = store().Get(own, {});
        if (!mine.ok() || mine->body != body) ++errors;
        // Every writer of the shared key writes one repeated letter: a reader must see one
        // whole version, never a mix.
        if (!store().Put(shared, std::string(kSize, static_cast<char>('a' + t)), {}).ok()) {
          ++errors;
        }
        Result<GetResult> seen = store().Get(shared, {});
        if (!seen.ok() || seen->body.size() != kSize ||
            seen->body.find_first_not_of(seen->body[0]) != std::string::npos) {
          ++errors;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(errors.load(), 0);
  ListOptions options;
  options.prefix = Key("concurrent/");
  FullListing listed = ListAll(store(), options);
  EXPECT_EQ(listed.objects.size(), static_cast<size_t>(kThreads + 1));
}

}  // namespace strata
