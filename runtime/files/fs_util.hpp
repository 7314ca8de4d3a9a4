// Small filesystem helpers shared by the runtime parts that build folders atomically
// (releases, source snapshots).
#pragma once
#include <filesystem>
#include <string>

namespace berth::fsutil {

std::string errstr(int e);
// 16 random hex chars, for temp siblings that are renamed into place.
std::string random_suffix();
// `p` is inside `root` (or is root); both absolute and normalized.
bool inside(const std::filesystem::path& root, const std::filesystem::path& p);
// remove_all that also copes with read-only (0555) directories.
void force_remove(const std::filesystem::path& p);

}  // namespace berth::fsutil
