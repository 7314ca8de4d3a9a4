// Snapshotting a project's source (see source.hpp): checks the request, then hands it to the
// local copy (source_copy.cpp) or the git clone (source_git.cpp); both finish with install().
#include "runtime/release/source.hpp"

#include <cerrno>
#include <cstdio>

#include <fmt/format.h>
#include "runtime/release/source_snapshot.hpp"

namespace berth {

namespace fs = std::filesystem;

namespace {

// dest without a trailing slash.
fs::path clean_dest(const fs::path& dest) {
  fs::path d = dest.lexically_normal();
  if (!d.empty() && d.filename().empty()) d = d.parent_path();
  return d;
}

}  // namespace

namespace source_detail {

using fsutil::random_suffix;

// The temp sibling a snapshot is built in.
fs::path temp_sibling(const fs::path& dest, const char* tag) {
  return dest.parent_path() / (dest.filename().string() + tag + random_suffix());
}

// Replaces dest by the finished tmp: the old dest is renamed away first, then removed.
status install(const fs::path& tmp, const fs::path& dest) {
  std::error_code ec;
  fs::path old;
  if (fs::exists(fs::symlink_status(dest, ec))) {
    old = temp_sibling(dest, ".old-");
    if (::rename(dest.c_str(), old.c_str()) != 0) {
      int err = errno;
      force_remove(tmp);
      return status::io_error(fmt::format("rename {}: {}", dest.string(), errstr(err)));
    }
  }
  if (::rename(tmp.c_str(), dest.c_str()) != 0) {
    int err = errno;
    if (!old.empty()) ::rename(old.c_str(), dest.c_str());  // put the previous one back
    force_remove(tmp);
    return status::io_error(fmt::format("rename {} -> {}: {}", tmp.string(), dest.string(), errstr(err)));
  }
  if (!old.empty()) force_remove(old);
  return status::ok();
}

}  // namespace source_detail

std::string mask_url_credentials(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  auto host_start = scheme + 3;
  auto slash = url.find('/', host_start);
  auto at = url.rfind('@', slash == std::string::npos ? std::string::npos : slash);
  if (at == std::string::npos || at < host_start) return url;
  return url.substr(0, host_start) + "***" + url.substr(at);
}

status snapshot_source(const std::string& source_path, const std::string& git_url,
                       const std::string& git_ref, const fs::path& dest,
                       std::chrono::seconds git_timeout, const std::string& git_credential,
                       snapshot_record* record) {
  if (record) record->clear();
  if (source_path.empty() == git_url.empty())
    return status::invalid_argument("a source needs exactly one of a path or a git url");
  fs::path d = clean_dest(dest);
  if (d.empty() || d == d.root_path() || d.filename() == "." || d.filename() == "..")
    return status::invalid_argument(fmt::format("invalid snapshot dest '{}'", dest.string()));
  if (!source_path.empty()) return source_detail::snapshot_local(source_path, d, record);
  return source_detail::snapshot_git(git_url, git_ref, d, git_timeout, git_credential);
}

}  // namespace berth
