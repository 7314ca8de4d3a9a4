// Packaging a build into a release without copying, or re-reading, what has not changed since
// the project's last packaging. Same release hash as hash_artifacts (release.hpp), same folder
// as package_release; what differs is how the folder is filled:
//  - a file whose bytes equal the file at the same path in the last packaged release is a hard
//    link to that file (releases are immutable: root-owned, never written after their rename,
//    mounted read-only into the sandbox; unlinking one release leaves its inodes to the others);
//  - a file is known equal without reading it when the build dir still holds the untouched copy
//    the snapshot made (snapshot_record: same ino, size, mtime, ctime, mode as right after the
//    copy) of a source file whose identity (dev, ino, size, mtime, ctime, mode) is the one the
//    last packaging saw; any other file is read, hashed, and compared byte by byte with the
//    previous release's file before it is linked;
//  - the hash resumes from the saved SHA-256 state after the longest unchanged prefix of
//    entries (sorted paths), so only entries from the first change on are read.
// The cache is <releases_dir>/.package-cache (package_cache.hpp).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "runtime/release/snapshot_record.hpp"
#include "runtime/status.hpp"

namespace berth {

struct package_report {
  std::string hash;      // 12 hex chars
  bool created = false;  // releases_dir/<hash> was made by this call
  size_t files = 0;
  size_t unread = 0;   // files whose bytes were not read (proven unchanged)
  size_t linked = 0;   // files hard-linked from the previous release
  size_t copied = 0;   // files written anew
  uint64_t bytes_read = 0, bytes_written = 0;
  // Where the time went (wall, µs): walking the build dir and loading the cache; hashing and
  // filling the folder; saving the cache.
  int64_t walk_us = 0, fill_us = 0, save_us = 0;
};

// Hashes the artifacts of build_dir (the rules and refusals of hash_artifacts) and, unless
// releases_dir/<hash> exists or `wanted(hash12)` is false, makes it as package_release does
// with sync=false (call sync_release before relying on it). `sources` (optional) is what the
// snapshot of build_dir recorded. Any failure leaves no folder behind; a missing, stale or
// unreadable cache only costs reading and copying everything.
status package_build(const std::filesystem::path& build_dir, const std::vector<std::string>& artifacts,
                     const snapshot_record* sources, const std::filesystem::path& releases_dir,
                     const std::function<bool(const std::string& hash12)>& wanted, package_report* out);

// Where package_build keeps what it saw (per project); removing it only costs one full read.
std::filesystem::path package_cache_path(const std::filesystem::path& releases_dir);

}  // namespace berth
