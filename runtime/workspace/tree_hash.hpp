// The content hash of a source tree (a workspace's preview/src, or the snapshot a deploy built
// from), and the listing it is computed from. No actor code; blocks (reads files).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/release/snapshot_record.hpp"
#include "runtime/status.hpp"

namespace berth {

struct tree_entry {
  std::string path;     // relative, generic form ("src/app.js")
  char type = 'f';      // 'f' file, 'd' directory, 'l' symlink
  uint32_t mode = 0;    // permission bits & 0777
  uint64_t size = 0;    // files
  std::string sha256;   // files: 64 hex chars of the content
  std::string target;   // links: the target text
};

struct tree_listing {
  std::vector<tree_entry> entries;  // sorted by path (byte order)
  std::string hash;                 // 64 hex chars: see hash_tree
  uint64_t files = 0, bytes = 0;    // regular files and their total size
};

// Content hashes of files already read, keyed by path (relative to the tree) and identity (dev,
// ino, size, mtime, ctime, mode): a file whose identity is unchanged is not read again. A file
// modified within the last 50 ms is hashed but not remembered: put() ignores it (the kernel's
// coarse timestamps could hide a second write in the same tick). Thread-safe.
class tree_hash_cache {
 public:
  bool find(const std::string& path, const file_identity& id, std::string* sha256) const;
  void put(const std::string& path, const file_identity& id, const std::string& sha256);
  void forget_all();
  // Drops the paths a complete walk no longer found (`entries`: the tree's whole listing, sorted
  // by path), so a tree whose files come and go does not grow the cache for ever.
  void keep_only(const std::vector<tree_entry>& entries);
 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::pair<file_identity, std::string>> by_path_;
};

// One cache per tree (keyed by the tree's absolute path), kept until forget_hash_cache(root)
// (the tree was removed, e.g. with its project). Thread-safe.
std::shared_ptr<tree_hash_cache> hash_cache_for(const std::filesystem::path& root);
void forget_hash_cache(const std::filesystem::path& root);

// Walks `root` (never following a symlink: every folder is opened relative to its parent with
// O_NOFOLLOW) and lists every entry below it, skipping entries named `.git` at any depth (as
// snapshots do). Fifos, sockets and devices are skipped.
// The hash is SHA-256 over, for each entry in path order: its type byte, its path (8-byte
// big-endian length + bytes), its mode (8 bytes), and for a file its size (8 bytes) and
// content SHA-256 (32 raw bytes), for a link its target (length + bytes). Two trees with the
// same paths, modes, contents and link targets have the same hash, wherever they are.
// `cache` (optional) skips reading unchanged files; after a complete walk it keeps only the
// paths listed (tree_hash_cache::keep_only). With `copied_from` (a snapshot's record,
// see snapshot_record.hpp), a file of `root` whose identity is still the copy's is looked up in
// the cache under its source's identity (the copy holds exactly those bytes); other files are
// read and not remembered, so the source tree's cache never learns the copy's identities.
// An entry removed while the walk runs is left out; a file's size is the bytes read.
// not_found: root missing; io_error naming the path otherwise (also when an entry turned into
// another kind of file, e.g. a folder into a link, while it was listed).
status hash_tree(const std::filesystem::path& root, tree_listing* out, tree_hash_cache* cache = nullptr,
                 const snapshot_record* copied_from = nullptr);

}  // namespace berth
