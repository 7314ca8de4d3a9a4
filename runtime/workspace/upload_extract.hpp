// Reading an uploaded source archive (a gzip'd tar, as `berth push` sends it) into a staging
// folder, refusing anything that could reach outside the tree. No actor code; blocks.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "runtime/status.hpp"

namespace berth {

// What an upload may hold (flags --max-upload-bytes, --max-upload-files, --max-upload-unpacked-bytes).
struct upload_limits {
  uint64_t max_bytes = 512ull << 20;            // the compressed body, as sent
  uint64_t max_files = 100000;                  // entries of every kind (files, dirs, links)
  uint64_t max_unpacked_bytes = 2048ull << 20;  // the sum of the regular files' sizes
};

// What an extraction found (filled as far as it got, also on failure).
struct upload_summary {
  uint64_t files = 0;   // regular files
  uint64_t dirs = 0;
  uint64_t links = 0;   // symlinks
  uint64_t bytes = 0;   // of the regular files
  std::string refused;  // the entry that was refused, as its raw bytes ("" when none)
};

// Extracts the gzip'd tar `archive` (a file) into `staging`, which must not exist: it is created
// (0700), filled, and on any failure removed again, so a refused upload leaves nothing behind.
// Accepted: regular files (mode & 0755 kept, plus 0600 so berth can read them: no setuid/setgid/
// sticky, no group/other write; mtime kept), directories (0755; folders an entry's path implies
// are made too), and symlinks whose target, resolved from the link's own folder, stays inside
// the tree (relative, no climbing above the root; links the archive made earlier or later are
// followed in that resolution, so a chain of links cannot climb out either). A leading "./" is
// dropped and the archive's root entry "." is ignored. Entries are created with openat/mkdirat/
// symlinkat relative to already-open parent folders with O_NOFOLLOW, so no entry is ever written
// through a link, not even one the same archive made. Owners, xattrs and ACLs are ignored.
// Refused, naming the entry (invalid_argument; `summary->refused` holds it): an absolute path, a
// ".." or "." or empty component, an empty name, a path over 4096 bytes or a component over 255,
// a hard link, a device, fifo or socket, a symlink leaving the tree (or a loop of links), a path
// that is both a file and a folder, a duplicate regular file, an entry below a symlink, a name or
// link target that is not UTF-8 (every answer about the tree is JSON). (A name with a NUL cannot
// reach here: libarchive hands names over as C strings, cut at the NUL.) The message quotes the
// name as a JSON string (control characters escaped), so it can be shown as it is.
// Over a limit: invalid_argument with a message starting "limit: " (is_limit_refusal): an archive
// file over max_bytes, more than max_files objects (entries and the folders their paths imply),
// or more than max_unpacked_bytes of file data (counted as the data is written, so a header
// cannot get past it).
// corruption: empty, not gzip, not tar, truncated, data after the gzip stream, or a checksum
// error (a tar header's, or the gzip CRC-32 / length, which zlib checks). io_error / no_space: the
// disk. invalid_argument (not a limit) when `staging` exists already (it is then left alone).
status extract_upload(const std::filesystem::path& archive, const std::filesystem::path& staging,
                      const upload_limits& limits, upload_summary* summary);

// True when a status from extract_upload is a limit (answered 413), not a bad archive (400).
bool is_limit_refusal(const status& s);

}  // namespace berth
