// Small filesystem helpers shared by the runtime parts that build folders atomically or copy,
// hash and write files through descriptors (releases, source snapshots, workspaces, uploads).
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "runtime/status.hpp"

namespace berth::fsutil {

std::string errstr(int e);
// The components of a relative path split on '/', empty ones kept ("a//b/" is a, "", b, ""):
// the callers decide what an empty component means. "" gives one empty component.
std::vector<std::string> split_slash(const std::string& path);
// 16 random hex chars, for temp siblings that are renamed into place.
std::string random_suffix();
// `p` is inside `root` (or is root); both absolute and normalized.
bool inside(const std::filesystem::path& root, const std::filesystem::path& p);
// remove_all that also copes with read-only (0555) directories.
void force_remove(const std::filesystem::path& p);
// Writes `text` to a temp sibling (0600), fsyncs it and renames it onto `path`: a reader sees
// the old file or the new one, never a part of either. io_error naming the step on failure.
status write_atomically(const std::string& path, const std::string& text);
// Reads the file open as `fd` from its offset to its end, 64 KiB at a time, handing each chunk to
// `chunk`; a failed status from `chunk` ends the read and is returned. io_error "read <shown>: …".
status read_chunks(int fd, const std::string& shown, const std::function<status(const char*, size_t)>& chunk);
// Writes all `n` bytes at `p` to `fd`, going on after short writes and EINTR. False with errno
// set by the write that failed.
bool write_all(int fd, const char* p, size_t n);
// The whole file; "" when it cannot be read (a missing file reads as empty).
std::string read_file(const std::string& path);

}  // namespace berth::fsutil
