// The local-folder snapshot (see source.hpp): a copy that opens every entry relative to its
// already-open parent with O_NOFOLLOW, re-creating symlinks and never following them.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <utility>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include "runtime/files/dir_list.hpp"
#include "runtime/release/source_file_copy.hpp"
#include "runtime/release/source_snapshot.hpp"

namespace berth::source_detail {

namespace {

using fsutil::inside;

// Everything is opened relative to the directory being copied (openat/fstatat/readlinkat with
// O_NOFOLLOW), never by a path: a symlink in the source, or a directory replaced by a symlink
// while the copy runs, can never make the copy read outside the source tree. Such a swap ends
// the snapshot with an error; links are re-created, never followed.

// Copies one file; with `record`, notes it under `rel` when the source stayed the same during
// the whole read and was not changed within the last clock tick (see snapshot_record.hpp).
status copy_and_record(int from_dir, int to_dir, const char* name, const fs::path& shown_from,
                       const fs::path& shown_to, mode_t mode, const fs::path& rel, snapshot_record* record) {
  file_copy c;
  auto s = copy_file_at(from_dir, to_dir, name, shown_from, shown_to, mode, &c);
  if (!s) return s;
  if (record && c.copy.known() && c.before == c.after && c.before.ctime_ns + kTickMarginNs < coarse_now_ns())
    (*record)[rel.generic_string()] = {c.before, c.copy};
  return status::ok();
}

// Copies the contents of the directory open as `from_dir` (known as `from`, at `rel` in the
// source tree) into the directory open as `to_dir` (known as `to`).
status copy_tree(int from_dir, int to_dir, const fs::path& from, const fs::path& to, const fs::path& rel,
                 const link_roots& roots, std::vector<std::pair<fs::path, mode_t>>* dir_modes,
                 snapshot_record* record) {
  std::vector<std::string> names;
  if (auto s = fsutil::list_dir(from_dir, from, fsutil::dot_git::skip, &names); !s) return s;

  for (auto& name : names) {
    fs::path src = from / name, dst = to / name;
    struct stat st;
    if (::fstatat(from_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // vanished meanwhile
      return status::io_error(fmt::format("stat {}: {}", src.string(), errstr(errno)));
    }
    mode_t mode = st.st_mode & 0777;
    if (S_ISLNK(st.st_mode)) {
      std::vector<char> buf(PATH_MAX + 1);
      ssize_t n = ::readlinkat(from_dir, name.c_str(), buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINVAL) return changed(src);
        return status::io_error(fmt::format("readlink {}: {}", src.string(), errstr(errno)));
      }
      if (static_cast<size_t>(n) >= buf.size())
        return status::io_error(fmt::format("readlink {}: target too long", src.string()));
      auto target = link_target(std::string(buf.data(), static_cast<size_t>(n)), rel, roots);
      if (::symlinkat(target.c_str(), to_dir, name.c_str()) != 0)
        return status::io_error(fmt::format("symlink {}: {}", dst.string(), errstr(errno)));
    } else if (S_ISREG(st.st_mode)) {
      auto s = copy_and_record(from_dir, to_dir, name.c_str(), src, dst, mode, rel / name, record);
      if (!s) return s;
    } else if (S_ISDIR(st.st_mode)) {
      fd_guard sub_from(::openat(from_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub_from.fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR) return changed(src);
        return status::io_error(fmt::format("open {}: {}", src.string(), errstr(errno)));
      }
      if (::mkdirat(to_dir, name.c_str(), 0700) != 0)
        return status::io_error(fmt::format("mkdir {}: {}", dst.string(), errstr(errno)));
      fd_guard sub_to(::openat(to_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub_to.fd < 0) return status::io_error(fmt::format("open {}: {}", dst.string(), errstr(errno)));
      dir_modes->emplace_back(dst, mode);
      auto s = copy_tree(sub_from.fd, sub_to.fd, src, dst, rel / name, roots, dir_modes, record);
      if (!s) return s;
    }
    // fifos, sockets, devices: not source, skipped.
  }
  return status::ok();
}

}  // namespace

status snapshot_local(const std::string& source_path, const fs::path& dest, snapshot_record* record) {
  std::error_code ec;
  fs::path src = fs::canonical(source_path, ec);
  if (ec) return status::not_found(fmt::format("source path {} not found", source_path));
  if (!fs::is_directory(src, ec))
    return status::invalid_argument(fmt::format("source path {} is not a directory", source_path));
  fs::path d = fs::weakly_canonical(fs::absolute(dest, ec), ec);
  if (ec) return status::io_error(fmt::format("resolve {}: {}", dest.string(), ec.message()));
  if (inside(src, d) || inside(d, src))
    return status::invalid_argument(fmt::format("snapshot dest {} and source path {} overlap",
                                                dest.string(), source_path));
  fs::create_directories(dest.parent_path(), ec);
  if (ec) return status::io_error(fmt::format("mkdir {}: {}", dest.parent_path().string(), ec.message()));

  fd_guard src_fd(::open(src.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (src_fd.fd < 0) {
    if (errno == ELOOP || errno == ENOTDIR) return changed(src);
    return status::io_error(fmt::format("open {}: {}", src.string(), errstr(errno)));
  }
  struct stat st;
  if (::fstat(src_fd.fd, &st) != 0)
    return status::io_error(fmt::format("stat {}: {}", src.string(), errstr(errno)));
  fs::path tmp = temp_sibling(dest, ".tmp-");
  if (::mkdir(tmp.c_str(), 0700) != 0)
    return status::io_error(fmt::format("mkdir {}: {}", tmp.string(), errstr(errno)));
  fd_guard tmp_fd(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (tmp_fd.fd < 0) {
    int err = errno;
    force_remove(tmp);
    return status::io_error(fmt::format("open {}: {}", tmp.string(), errstr(err)));
  }
  link_roots roots{fs::absolute(source_path, ec).lexically_normal(), src};
  if (!roots.given.empty() && roots.given.filename().empty()) roots.given = roots.given.parent_path();
  std::vector<std::pair<fs::path, mode_t>> dir_modes{{tmp, st.st_mode & 0777}};
  snapshot_record copied;
  auto s = copy_tree(src_fd.fd, tmp_fd.fd, src, tmp, fs::path(), roots, &dir_modes, record ? &copied : nullptr);
  // Directory modes last (deepest first), so read-only directories could be filled.
  for (auto it = dir_modes.rbegin(); s && it != dir_modes.rend(); ++it)
    if (::chmod(it->first.c_str(), it->second) != 0)
      s = status::io_error(fmt::format("chmod {}: {}", it->first.string(), errstr(errno)));
  if (!s) {
    force_remove(tmp);
    return s;
  }
  if (record) {
    // A build that rewrites a copy must change its ctime: it starts only once the clock has
    // left the tick of the newest copy (a wait of at most kTickMarginNs).
    int64_t newest = 0;
    for (auto& [rel, c] : copied) newest = std::max(newest, c.copy.ctime_ns);
    while (coarse_now_ns() <= newest + kTickMarginNs) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  s = install(tmp, dest);
  if (s && record) *record = std::move(copied);
  return s;
}

}  // namespace berth::source_detail
