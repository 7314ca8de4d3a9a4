// Internal to runtime/release/source*.cpp: the two ways of snapshotting a source
// (source_copy.cpp, source_git.cpp) and the temp-sibling install they share (source.cpp).
#pragma once
#include <chrono>
#include <filesystem>
#include <string>

#include "runtime/files/fs_util.hpp"
#include "runtime/release/snapshot_record.hpp"
#include "runtime/status.hpp"

namespace berth::source_detail {

namespace fs = std::filesystem;
using fsutil::errstr;
using fsutil::force_remove;

// A sibling of dest named <dest><tag><random>, where a snapshot is built before install().
fs::path temp_sibling(const fs::path& dest, const char* tag);
// Replaces dest by the finished tmp: the old dest is renamed away first, then removed.
status install(const fs::path& tmp, const fs::path& dest);

// `dest` is clean (no trailing slash, not a root); see snapshot_source in source.hpp.
status snapshot_local(const std::string& source_path, const fs::path& dest, snapshot_record* record);
status snapshot_git(const std::string& url, const std::string& ref, const fs::path& dest,
                    std::chrono::seconds timeout, const std::string& credential);

}  // namespace berth::source_detail
