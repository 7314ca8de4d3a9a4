// Internal to runtime/release/: the artifacts of a build as a sorted list of entries
// (artifact_walk.cpp), and the one pass that hashes them and, when packaging, copies them
// (artifact_hash.cpp).
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "runtime/release/snapshot_record.hpp"
#include "runtime/status.hpp"

namespace berth::release_detail {

namespace fs = std::filesystem;

enum class kind { file, dir, link };

struct entry {
  kind k = kind::file;
  fs::path abs;        // where it is in the build dir
  uint32_t mode = 0;   // files and dirs
  std::string target;  // links, as re-created in the release
  file_identity id;    // files: the lstat seen by the walk
};
// Keyed by the relative path in generic form; std::map gives the byte-order sort and dedups
// overlapping artifacts ("dist" and "dist/a.js").
using entry_map = std::map<std::string, entry>;

// Resolves build_dir into *root and lists every entry of the artifacts, with the checks
// described at hash_artifacts in release.hpp.
status collect(const fs::path& build_dir, const std::vector<std::string>& artifacts, fs::path* root,
               entry_map* out);

// Opens the regular file `abs` (below `root`, as collect() found it) one path component at a
// time with O_NOFOLLOW, so a directory swapped for a symlink since is never followed. -1 and
// errno (ELOOP/ENOTDIR for such a swap) on failure.
int open_below(const fs::path& root, const fs::path& abs);

// Hashes the entries in order; with `dest`, also re-creates them under it.
status process(const fs::path& root, const entry_map& entries, const fs::path* dest, std::string* hex);

}  // namespace berth::release_detail
