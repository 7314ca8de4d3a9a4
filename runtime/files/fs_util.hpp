// Small filesystem helpers shared by the runtime parts that build folders atomically
// (releases, source snapshots).
#pragma once
#include <filesystem>
#include <string>

#include "runtime/status.hpp"

namespace berth::fsutil {

std::string errstr(int e);
// 16 random hex chars, for temp siblings that are renamed into place.
std::string random_suffix();
// `p` is inside `root` (or is root); both absolute and normalized.
bool inside(const std::filesystem::path& root, const std::filesystem::path& p);
// remove_all that also copes with read-only (0555) directories.
void force_remove(const std::filesystem::path& p);
// Writes `text` to a temp sibling (0600), fsyncs it and renames it onto `path`: a reader sees
// the old file or the new one, never a part of either. io_error naming the step on failure.
status write_atomically(const std::string& path, const std::string& text);
// The whole file; "" when it cannot be read (a missing file reads as empty).
std::string read_file(const std::string& path);

}  // namespace berth::fsutil
