// Release folders (see release.hpp): hashing and packaging the artifacts (walked and hashed by
// artifact_walk.cpp and artifact_hash.cpp), switching the `current` link, removing a release.
#include "runtime/release/release.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>
#include "runtime/files/fs_util.hpp"
#include "runtime/release/artifacts.hpp"

namespace berth {

namespace fs = std::filesystem;

namespace {

using fsutil::errstr;
using fsutil::force_remove;
using fsutil::random_suffix;
using release_detail::collect;
using release_detail::entry_map;
using release_detail::process;

// syncfs of the filesystem holding `dir`: one call instead of an fsync per file.
status sync_files(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return status::io_error(fmt::format("open {}: {}", dir.string(), errstr(errno)));
  int rc = ::syncfs(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return status::io_error(fmt::format("sync {}: {}", dir.string(), errstr(err)));
  return status::ok();
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

bool valid_release_hash(const std::string& h) {
  if (h.size() != 12) return false;
  for (char c : h)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

status hash_artifacts(const fs::path& build_dir, const std::vector<std::string>& artifacts,
                      std::string* hash12) {
  fs::path root;
  entry_map entries;
  auto s = collect(build_dir, artifacts, &root, &entries);
  if (!s) return s;
  std::string hex;
  s = process(root, entries, nullptr, &hex);
  if (!s) return s;
  *hash12 = hex.substr(0, 12);
  return status::ok();
}

status package_release(const fs::path& build_dir, const std::vector<std::string>& artifacts,
                       const fs::path& releases_dir, const std::string& hash12, fs::path* out, bool sync) {
  if (!valid_release_hash(hash12))
    return status::invalid_argument(fmt::format("'{}' is not a release hash", hash12));
  fs::path final_dir = releases_dir / hash12;
  if (out) *out = final_dir;
  std::error_code ec;
  auto st = fs::symlink_status(final_dir, ec);
  if (fs::is_directory(st)) return status::ok();  // immutable: already packaged
  if (fs::exists(st))
    return status::corruption(fmt::format("{} exists and is not a directory", final_dir.string()));

  fs::create_directories(releases_dir, ec);
  if (ec) return status::io_error(fmt::format("mkdir {}: {}", releases_dir.string(), ec.message()));

  fs::path root;
  entry_map entries;
  auto s = collect(build_dir, artifacts, &root, &entries);
  if (!s) return s;

  fs::path tmp = releases_dir / (hash12 + ".tmp-" + random_suffix());
  if (::mkdir(tmp.c_str(), 0700) != 0)
    return status::io_error(fmt::format("mkdir {}: {}", tmp.string(), errstr(errno)));
  auto fail = [&](status st) {
    force_remove(tmp);
    return st;
  };
  std::string hex;
  s = process(root, entries, &tmp, &hex);
  if (!s) return fail(s);
  if (hex.substr(0, 12) != hash12)
    return fail(status::corruption(fmt::format(
        "artifacts hash to {} while packaging, not {}: the build dir changed", hex.substr(0, 12), hash12)));
  if (::chmod(tmp.c_str(), 0755) != 0)
    return fail(status::io_error(fmt::format("chmod {}: {}", tmp.string(), errstr(errno))));
  // Everything on disk before the name appears (one syncfs instead of an fsync per file).
  if (sync)
    if (auto synced = sync_files(tmp); !synced) return fail(synced);
  int err = 0;

  if (::rename(tmp.c_str(), final_dir.c_str()) != 0) {
    err = errno;
    if ((err == EEXIST || err == ENOTEMPTY) && fs::is_directory(fs::symlink_status(final_dir, ec)))
      return fail(status::ok());  // packaged concurrently: same content, keep the first
    return fail(status::io_error(fmt::format("rename {} -> {}: {}", tmp.string(), final_dir.string(), errstr(err))));
  }
  if (sync) fsync_dir(releases_dir);
  return status::ok();
}

status sync_release(const fs::path& releases_dir, const std::string& hash12) {
  if (auto s = sync_files(releases_dir / hash12); !s) return s;
  fsync_dir(releases_dir);
  return status::ok();
}

status switch_current(const fs::path& releases_dir, const std::string& hash12) {
  if (!valid_release_hash(hash12))
    return status::invalid_argument(fmt::format("'{}' is not a release hash", hash12));
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(releases_dir / hash12, ec)))
    return status::not_found(fmt::format("release {} not found in {}", hash12, releases_dir.string()));
  fs::path tmp = releases_dir / ("current.tmp-" + random_suffix());
  if (::symlink(hash12.c_str(), tmp.c_str()) != 0)
    return status::io_error(fmt::format("symlink {}: {}", tmp.string(), errstr(errno)));
  fs::path current = releases_dir / "current";
  if (::rename(tmp.c_str(), current.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return status::io_error(fmt::format("rename {} -> {}: {}", tmp.string(), current.string(), errstr(err)));
  }
  return status::ok();
}

std::string read_current(const fs::path& releases_dir) {
  std::error_code ec;
  fs::path target = fs::read_symlink(releases_dir / "current", ec);
  if (ec) return "";
  std::string name = target.lexically_normal().filename().string();
  if (target.lexically_normal().has_parent_path() || !valid_release_hash(name)) return "";
  return name;
}

status remove_release(const fs::path& releases_dir, const std::string& hash12) {
  if (!valid_release_hash(hash12))
    return status::invalid_argument(fmt::format("'{}' is not a release hash", hash12));
  if (read_current(releases_dir) == hash12)
    return status::invalid_argument(fmt::format("release {} is current; switch to another one first", hash12));
  fs::path dir = releases_dir / hash12;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir, ec)))
    return status::not_found(fmt::format("release {} not found in {}", hash12, releases_dir.string()));
  fs::path doomed = releases_dir / (hash12 + ".rm-" + random_suffix());
  if (::rename(dir.c_str(), doomed.c_str()) != 0)
    return status::io_error(fmt::format("rename {}: {}", dir.string(), errstr(errno)));
  force_remove(doomed);
  if (fs::exists(fs::symlink_status(doomed, ec)))
    return status::io_error(fmt::format("could not remove all of {}", doomed.string()));
  return status::ok();
}

}  // namespace berth
