// S3's rules for multipart uploads and ETags that the upload queue relies on to plan parts and
// to recognise an object it uploaded before a restart.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backends/object_store.h"

namespace strata {

// Part numbers run from 1 to kMaxPartNumber.
inline constexpr int kMaxPartNumber = 10000;

// The largest object one CopyObject copies (5 GiB); larger ones need UploadPartCopy.
inline constexpr uint64_t kMaxCopyObjectBytes = 5ull << 30;

// Whether an ETag a caller holds names the current one; surrounding quotes are ignored.
bool EtagMatches(std::string_view wanted, std::string_view current);

// The ETag S3 gives a multipart object: hex MD5 of the concatenated binary MD5s of the parts,
// then "-" and the part count. REQUIRES: every part ETag is a 32-digit hex MD5.
std::string MultipartEtag(const std::vector<PartInfo>& parts);

}  // namespace strata
