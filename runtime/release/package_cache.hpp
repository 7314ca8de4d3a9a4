// Internal to runtime/release/package_build.cpp: what the last packaging of a project saw, so
// the next one neither re-reads nor re-copies what has not changed. Stored per project as
// <production>/.package-cache (MessagePack, written atomically: a crash leaves the old one or
// the new one; an unreadable or other-version file reads as empty, which only costs a full read).
#pragma once
#include <openssl/sha.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace berth::release_detail {

// One entry of the release, in hash order. For a file, `source` is the identity of the source
// file whose untouched copy it was (unknown: the build made or changed it, or a git source).
struct cached_entry {
  std::string rel;
  int kind = 0;  // release_detail::kind
  uint32_t mode = 0;
  uint64_t size = 0;
  std::string target;
  uint64_t dev = 0, ino = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
};

struct package_cache {
  std::string hash;     // the full hex SHA-256 of `entries`
  std::string release;  // the release folder holding exactly these entries (the link source)
  std::vector<cached_entry> entries;
  // The hash state after entries[0..i]: a packaging whose first k entries are the same resumes
  // from the last checkpoint before k instead of re-reading them.
  std::map<int64_t, SHA256_CTX> checkpoints;
};

// Empty when the file is missing, unreadable or of another version.
package_cache load_package_cache(const std::filesystem::path& file);
// Atomic replace (temp file, fsync, rename).
bool save_package_cache(const std::filesystem::path& file, const package_cache& cache);

}  // namespace berth::release_detail
