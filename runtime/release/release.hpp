// Content hashing and packaging of build artifacts into immutable, content-addressed release
// folders: <releases_dir>/<hash12>/ and the `current -> <hash12>` symlink. No actor code.
//
// What the hash covers (SHA-256, first 12 hex chars), for every entry under the artifacts,
// sorted by relative path (byte order), each field length-prefixed (8-byte big-endian):
//   regular file: ("file", path, mode, size, bytes)
//   directory:    ("dir", path, mode)      -- so empty dirs and dir modes are part of a release
//   symlink:      ("link", path, target)   -- only if it resolves inside the build dir
// `mode` is the permission bits & 0777 (setuid/setgid/sticky are dropped, never copied).
// mtimes, owners and directory iteration order do not matter.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/status.hpp"

namespace berth {

// True for exactly 12 lowercase hex chars (what hash_artifacts produces).
bool valid_release_hash(const std::string& hash12);

// Artifacts are relative paths under build_dir (a file or a directory, recursed); "." means
// the whole build dir. Refused with invalid_argument, naming the path: an absolute path or a
// ".." component, a symlink (the artifact itself, a parent of it, or anything inside it) that
// resolves outside the build dir, and special files (fifo, socket, device). A missing
// artifact is not_found, naming it. Symlinks are never followed: a link inside the build dir is
// hashed (and packaged) as a link; an absolute target inside the build dir is rewritten as a
// relative one so the release never points back into the build dir. File contents are read
// through paths opened one component at a time with O_NOFOLLOW: a directory that becomes a
// symlink after it was listed (a process left behind by the build swapping dist/x for a link to
// /etc) fails with corruption instead of being read. Entries named `.git` are skipped at every
// level, and an artifact that names one is invalid_argument: a release never holds a
// repository's history or configuration.
status hash_artifacts(const std::filesystem::path& build_dir,
                      const std::vector<std::string>& artifacts, std::string* hash12);

// Copies the artifacts (relative paths, modes, links as links) into
// releases_dir/<hash12>.tmp-<random>, re-hashing while copying: if the result is not hash12
// (the build dir changed since hash_artifacts) it fails with corruption. Then syncs it (unless
// `sync` is false: then call sync_release before anything depends on it surviving a power
// loss) and renames it atomically to releases_dir/<hash12>. If that folder already exists it is
// left untouched and ok is returned (content-addressed, immutable). On any failure the temp
// folder is removed. `out` (optional) receives releases_dir/<hash12>.
status package_release(const std::filesystem::path& build_dir,
                       const std::vector<std::string>& artifacts,
                       const std::filesystem::path& releases_dir, const std::string& hash12,
                       std::filesystem::path* out, bool sync = true);

// Makes a release packaged without `sync` durable: its files and its name in releases_dir.
status sync_release(const std::filesystem::path& releases_dir, const std::string& hash12);

// Points releases_dir/current at <hash12> (relative link target) atomically: a temp symlink
// rename()d over `current`. not_found if the release folder does not exist. Not synced: the
// log says which release is current, and a restart points `current` back at it
// (tidy_production_dir).
status switch_current(const std::filesystem::path& releases_dir, const std::string& hash12);

// The hash `current` points to, or "" (no link, or not a release hash).
std::string read_current(const std::filesystem::path& releases_dir);

// Removes releases_dir/<hash12> (renamed away first, so it disappears atomically).
// invalid_argument if it is the one `current` points to; not_found if it does not exist.
status remove_release(const std::filesystem::path& releases_dir, const std::string& hash12);

}  // namespace berth
