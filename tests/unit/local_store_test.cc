#include "tests/support/local_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace strata {
namespace {

namespace fs = std::filesystem;

class LocalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = ::testing::TempDir() + "strata-local-store-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    root_ = dir + "/store";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<LocalStore> OpenStore() {
    Result<std::unique_ptr<LocalStore>> store = LocalStore::Open(root_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  std::vector<fs::path> Files(std::string_view suffix) const {
    std::vector<fs::path> out;
    for (const auto& entry : fs::directory_iterator(root_ + "/objects")) {
      if (entry.path().string().ends_with(suffix)) out.push_back(entry.path());
    }
    return out;
  }

  static std::string Slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // The record of the object whose (percent-encoded) key is `encoded_key`.
  fs::path RecordOf(std::string_view encoded_key) const {
    for (const fs::path& path : Files(".meta")) {
      if (Slurp(path).find("\nkey " + std::string(encoded_key) + "\n") != std::string::npos) {
        return path;
      }
    }
    ADD_FAILURE() << "no record for " << encoded_key;
    return {};
  }

  std::string dir_;
  std::string root_;
};

TEST_F(LocalStoreTest, ReopenKeepsObjectsMetadataAndUploads) {
  const std::string odd_key = std::string("odd\n\x01 key%/\xff", 13);
  PutOptions put;
  put.content_type = "text/plain; charset=utf-8";
  put.metadata = {{"mode", "33188"}, {"note", std::string("a b%c\nd\0e\xc3\xbc", 12)}};
  std::string body = std::string("binary\0body", 11);
  ObjectInfo before_info;
  ObjectInfo multipart_info;
  std::string upload_id;
  PartInfo pending_part;
  {
    std::unique_ptr<LocalStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put(odd_key, body, put).ok());
    ASSERT_TRUE(store->Put("a", "short", {}).ok());
    ASSERT_TRUE(store->Put("a/b", "nested", {}).ok());
    Result<ObjectInfo> head = store->Head(odd_key);
    ASSERT_TRUE(head.ok());
    before_info = *head;

    Result<std::string> id = store->CreateMultipartUpload("mp", put);
    ASSERT_TRUE(id.ok());
    Result<PartInfo> part = store->UploadPart("mp", *id, 1, "only part");
    ASSERT_TRUE(part.ok());
    ASSERT_TRUE(store->CompleteMultipartUpload("mp", *id, {*part}).ok());
    head = store->Head("mp");
    ASSERT_TRUE(head.ok());
    multipart_info = *head;

    Result<std::string> pending = store->CreateMultipartUpload("pending", {});
    ASSERT_TRUE(pending.ok());
    upload_id = *pending;
    Result<PartInfo> pending_result = store->UploadPart("pending", upload_id, 1, "first");
    ASSERT_TRUE(pending_result.ok());
    pending_part = *pending_result;
  }

  std::unique_ptr<LocalStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->load_errors().empty());
  Result<GetResult> got = store->Get(odd_key, {});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->body, body);
  EXPECT_EQ(got->info.key, odd_key);
  EXPECT_EQ(got->info.etag, before_info.etag);
  EXPECT_EQ(got->info.size, before_info.size);
  EXPECT_EQ(got->info.content_type, put.content_type);
  EXPECT_EQ(got->info.metadata, put.metadata);
  EXPECT_EQ(got->info.last_modified, before_info.last_modified);
  got = store->Get("a", {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, "short");
  got = store->Get("a/b", {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, "nested");
  got = store->Get("mp", {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, "only part");
  EXPECT_EQ(got->info.etag, multipart_info.etag);
  EXPECT_TRUE(got->info.etag.ends_with("-1"));

  Result<ListPage> page = store->List({});
  ASSERT_TRUE(page.ok());
  std::vector<std::string> keys;
  for (const ObjectInfo& info : page->objects) keys.push_back(info.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "a/b", "mp", odd_key}));

  // The completed upload is gone; the pending one survived with its part.
  Result<std::vector<MultipartUpload>> uploads = store->ListMultipartUploads("");
  ASSERT_TRUE(uploads.ok());
  ASSERT_EQ(uploads->size(), 1u);
  EXPECT_EQ((*uploads)[0].key, "pending");
  EXPECT_EQ((*uploads)[0].upload_id, upload_id);
  Result<std::vector<PartInfo>> parts = store->ListParts("pending", upload_id);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].etag, pending_part.etag);
  EXPECT_EQ((*parts)[0].size, 5u);
  ASSERT_TRUE(store->CompleteMultipartUpload("pending", upload_id, *parts).ok());
  got = store->Get("pending", {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, "first");
}

TEST_F(LocalStoreTest, DeletesAndOverwritesPersist) {
  {
    std::unique_ptr<LocalStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put("gone", "x", {}).ok());
    ASSERT_TRUE(store->Put("changed", "old", {}).ok());
    ASSERT_TRUE(store->Put("changed", "new", {}).ok());
    ASSERT_TRUE(store->Delete("gone").ok());
  }
  std::unique_ptr<LocalStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Head("gone").status().kind(), ErrorKind::kNotFound);
  Result<GetResult> got = store->Get("changed", {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, "new");
  EXPECT_EQ(Files(".data").size(), 1u) << "replaced and deleted bodies are removed";
}

TEST_F(LocalStoreTest, OnlyOneStorePerDirectory) {
  std::unique_ptr<LocalStore> first = OpenStore();
  ASSERT_NE(first, nullptr);
  Result<std::unique_ptr<LocalStore>> second = LocalStore::Open(root_);
  EXPECT_FALSE(second.ok());
  first.reset();
  EXPECT_NE(OpenStore(), nullptr);
}

TEST_F(LocalStoreTest, CorruptRecordIsSkippedWithAnError) {
  {
    std::unique_ptr<LocalStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put("good", "fine", {}).ok());
    ASSERT_TRUE(store->Put("bad", "doomed", {}).ok());
  }
  fs::path record = RecordOf("bad");
  std::string text = Slurp(record);
  fs::resize_file(record, text.size() / 2);  // a torn record: no "end" line
  {
    std::unique_ptr<LocalStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_EQ(store->load_errors().size(), 1u);
    EXPECT_NE(store->load_errors()[0].find(record.filename().string()), std::string::npos)
        << store->load_errors()[0];
    EXPECT_TRUE(store->Head("good").ok());
    EXPECT_EQ(store->Head("bad").status().kind(), ErrorKind::kNotFound);
    Result<ListPage> page = store->List({});
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->objects.size(), 1u);
    EXPECT_EQ(page->objects[0].key, "good");
    // Writing the key again replaces the bad record.
    ASSERT_TRUE(store->Put("bad", "again", {}).ok());
  }
  std::unique_ptr<LocalStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->load_errors().empty());
  Result<GetResult> got = store->Get("bad", {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, "again");
}

TEST_F(LocalStoreTest, GarbageRecordsNeverCrash) {
  {
    std::unique_ptr<LocalStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put("good", "fine", {}).ok());
  }
  const std::vector<std::string> garbage = {
      "",
      "strata-local-object 1\n",
      "strata-local-object 1\nkey %zz\nend\n",
      "strata-local-object 1\nkey x\ndata y\nsize -5\netag e\nmtime_ns 1\ncontent_type t\nend\n",
      "strata-local-object 1\nkey x\nkey y\nend\n",
      "strata-local-object 1\nmeta onlyname\nend\n",
      std::string("\0\0\0\xff", 4),
      "not a record at all",
  };
  for (size_t i = 0; i < garbage.size(); ++i) {
    std::ofstream(root_ + "/objects/garbage" + std::to_string(i) + ".meta", std::ios::binary)
        << garbage[i];
  }
  std::ofstream(root_ + "/objects/stray.txt") << "ignored";
  std::unique_ptr<LocalStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->load_errors().size(), garbage.size());
  EXPECT_TRUE(store->Head("good").ok());
}

TEST_F(LocalStoreTest, MissingRecordOrBodyDropsTheObject) {
  {
    std::unique_ptr<LocalStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put("keep", "k", {}).ok());
    ASSERT_TRUE(store->Put("no-record", "r", {}).ok());
    ASSERT_TRUE(store->Put("no-body", "b", {}).ok());
  }
  fs::path no_record = RecordOf("no-record");
  fs::path no_body = RecordOf("no-body");
  fs::remove(no_record);
  std::string body_hash = no_body.stem().string();
  for (const fs::path& data : Files(".data")) {
    if (data.filename().string().starts_with(body_hash)) fs::remove(data);
  }
  std::unique_ptr<LocalStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->Head("keep").ok());
  EXPECT_EQ(store->Head("no-record").status().kind(), ErrorKind::kNotFound);
  EXPECT_EQ(store->Head("no-body").status().kind(), ErrorKind::kNotFound);
  ASSERT_EQ(store->load_errors().size(), 1u) << "a record whose body is missing is reported";
  EXPECT_NE(store->load_errors()[0].find("missing"), std::string::npos);
  // The body without a record was an uncommitted write and is cleaned up.
  EXPECT_EQ(Files(".data").size(), 1u);
}

TEST_F(LocalStoreTest, LeftoverTempFilesAreRemoved) {
  {
    std::unique_ptr<LocalStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
  }
  std::ofstream(root_ + "/objects/abc.123.meta.tmp") << "half";
  std::unique_ptr<LocalStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(Files(".tmp").empty());
  EXPECT_TRUE(store->load_errors().empty());
}

TEST_F(LocalStoreTest, RejectsKeysLongerThan1024Bytes) {
  std::unique_ptr<LocalStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->Put(std::string(1024, 'k'), "x", {}).ok());
  EXPECT_EQ(store->Put(std::string(1025, 'k'), "x", {}).status().kind(),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(store->Put("", "x", {}).status().kind(), ErrorKind::kInvalidArgument);
}

TEST_F(LocalStoreTest, DirectoriesArePrivate) {
  std::unique_ptr<LocalStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (const char* dir : {"", "/objects", "/uploads"}) {
    fs::perms perms = fs::status(root_ + dir).permissions();
    EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none) << dir;
  }
}

}  // namespace
}  // namespace strata
