// The release a build would make, compared with a release folder, without making it: the hash
// packaging would give (the walk and hash of runtime/release, release.hpp) and the entries
// added, removed and changed. No actor code; blocks (reads both trees); writes nothing.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "messages/plan.hpp"
#include "runtime/status.hpp"

namespace berth {

// Walks `artifacts` of `build_dir` as packaging does (its refusals: hash_artifacts in
// release.hpp), sets *hash12 to the release hash they give, and lists how they differ from
// `release_dir` (a release folder, walked whole; "" or missing: every entry is added).
// A file is changed when its bytes, its size or its mode differ; a link when its target does;
// an entry that changed kind (a file became a folder) is changed. Directories show only when
// their own mode changed, or when they were added or removed with nothing below them listed
// (an empty folder). Sorted by path. Errors: those of the walk (then *changes is empty), or
// io_error when a file cannot be read to be compared.
status diff_release(const std::filesystem::path& build_dir, const std::vector<std::string>& artifacts,
                    const std::filesystem::path& release_dir, std::string* hash12,
                    std::vector<file_change>* changes);

}  // namespace berth
