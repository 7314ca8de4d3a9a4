// Listing a folder through a descriptor, for the code that walks trees an app may be changing
// (source snapshots, workspace hashing and applying): no path is resolved again.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/status.hpp"

namespace berth::fsutil {

enum class dot_git { keep, skip };

// Replaces `names` with the entries of the folder open as `dir` (never "." or "..", nor ".git"
// with dot_git::skip), in readdir order; `dir` itself is left untouched (own descriptor).
// io_error "list <shown>: <reason>" when the folder cannot be read.
status list_dir(int dir, const std::filesystem::path& shown, dot_git git, std::vector<std::string>* names);

}  // namespace berth::fsutil
