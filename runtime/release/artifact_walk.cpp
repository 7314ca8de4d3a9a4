// Walking the artifacts of a build (see hash_artifacts in release.hpp): every file, directory
// and symlink under them, refusing links that resolve outside the build dir and special files.
#include <sys/stat.h>

#include <cerrno>
#include <system_error>

#include <fmt/format.h>
#include "runtime/files/fs_util.hpp"
#include "runtime/release/artifacts.hpp"

namespace berth::release_detail {

namespace {

using fsutil::errstr;
using fsutil::inside;

constexpr mode_t kModeMask = 0777;  // setuid/setgid/sticky are never hashed nor copied

// A relative artifact name, lexically normalized; "" if it is not acceptable.
fs::path normalize_artifact(const std::string& a) {
  if (a.empty()) return {};
  fs::path p(a);
  if (p.is_absolute() || p.has_root_name() || p.has_root_directory()) return {};
  for (auto& c : p)
    if (c == "..") return {};
  p = p.lexically_normal();
  if (!p.empty() && p.filename().empty()) p = p.parent_path();  // "dist/" -> "dist"
  if (p.empty()) p = ".";
  return p;
}

// `rel` is the path the link gets in the release, `abs` where it really is (its parent is a
// real directory inside root).
status add_link(const fs::path& root, const fs::path& abs, const fs::path& rel, entry_map* out) {
  std::error_code ec;
  fs::path target = fs::read_symlink(abs, ec);
  if (ec) return status::io_error(fmt::format("readlink {}: {}", rel.string(), ec.message()));
  fs::path resolved = fs::weakly_canonical(target.is_absolute() ? target : abs.parent_path() / target, ec);
  if (ec)
    return status::invalid_argument(fmt::format("artifact path '{}': cannot resolve symlink to '{}': {}",
                                                rel.string(), target.string(), ec.message()));
  if (!inside(root, resolved))
    return status::invalid_argument(
        fmt::format("artifact path '{}' is a symlink to '{}', which resolves outside the build dir",
                    rel.string(), target.string()));
  std::string stored = target.string();
  if (target.is_absolute()) {
    // Never let a release point back into the (mutable) build dir: same place, relative.
    fs::path from_root = resolved.lexically_relative(root);
    fs::path parent = rel.parent_path();
    stored = (parent.empty() ? from_root : from_root.lexically_relative(parent)).string();
    if (stored.empty()) stored = ".";
  }
  entry e;
  e.k = kind::link;
  e.abs = abs;
  e.target = std::move(stored);
  (*out)[rel.generic_string()] = std::move(e);
  return status::ok();
}

// Adds abs (known as rel) and, for a directory, everything under it. Nothing is followed.
status add_tree(const fs::path& root, const fs::path& abs, const fs::path& rel, entry_map* out) {
  struct stat st;
  if (::lstat(abs.c_str(), &st) != 0) {
    if (errno == ENOENT) return status::not_found(fmt::format("artifact '{}' not found in the build dir", rel.string()));
    return status::io_error(fmt::format("stat {}: {}", rel.string(), errstr(errno)));
  }
  if (S_ISLNK(st.st_mode)) return add_link(root, abs, rel, out);
  if (S_ISREG(st.st_mode)) {
    entry e;
    e.k = kind::file;
    e.abs = abs;
    e.mode = st.st_mode & kModeMask;
    e.id = file_identity::of(st);
    (*out)[rel.generic_string()] = std::move(e);
    return status::ok();
  }
  if (!S_ISDIR(st.st_mode))
    return status::invalid_argument(
        fmt::format("artifact path '{}' is not a regular file, directory or symlink", rel.string()));
  if (rel != ".") {
    entry e;
    e.k = kind::dir;
    e.abs = abs;
    e.mode = st.st_mode & kModeMask;
    (*out)[rel.generic_string()] = std::move(e);
  }
  std::error_code ec;
  fs::directory_iterator it(abs, ec), end;
  if (ec) return status::io_error(fmt::format("list {}: {}", rel.string(), ec.message()));
  for (; it != end; it.increment(ec)) {
    auto name = it->path().filename();
    if (name == ".git") continue;  // a repository's history and config never enter a release
    auto s = add_tree(root, abs / name, rel == "." ? name : rel / name, out);
    if (!s) return s;
  }
  if (ec) return status::io_error(fmt::format("list {}: {}", rel.string(), ec.message()));
  return status::ok();
}

}  // namespace

status collect(const fs::path& build_dir, const std::vector<std::string>& artifacts, fs::path* root,
               entry_map* out) {
  std::error_code ec;
  *root = fs::canonical(build_dir, ec);
  if (ec || !fs::is_directory(*root))
    return status::not_found(fmt::format("build dir {} not found", build_dir.string()));
  if (artifacts.empty()) return status::invalid_argument("no artifacts to package");
  for (auto& a : artifacts) {
    fs::path rel = normalize_artifact(a);
    if (rel.empty())
      return status::invalid_argument(fmt::format("artifact '{}' must be a relative path without '..'", a));
    for (auto& part : rel)
      if (part == ".git")
        return status::invalid_argument(fmt::format("artifact '{}': a release never contains .git", a));
    fs::path abs = *root;
    if (rel != ".") {
      // The parents may themselves be symlinks: they must resolve inside the build dir.
      fs::path parent = *root;
      if (rel.has_parent_path()) {
        parent = fs::canonical(*root / rel.parent_path(), ec);
        if (ec) {
          if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory)
            return status::not_found(fmt::format("artifact '{}' not found in the build dir", a));
          return status::io_error(fmt::format("resolve artifact '{}': {}", a, ec.message()));
        }
        if (!inside(*root, parent))
          return status::invalid_argument(fmt::format(
              "artifact '{}': '{}' resolves outside the build dir", a, rel.parent_path().string()));
      }
      abs = parent / rel.filename();
    }
    auto s = add_tree(*root, abs, rel, out);
    if (!s) {
      if (s.which() == status::code::not_found && rel.string() != a)  // name it as given
        return status::not_found(fmt::format("artifact '{}' not found in the build dir", a));
      return s;
    }
  }
  return status::ok();
}

}  // namespace berth::release_detail
