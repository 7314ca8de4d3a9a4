// Changing and reading a workspace's live tree (tree_change.hpp). The moves themselves are in
// tree_apply.cpp; this file checks, stages the intent, and cleans up.
#include "runtime/workspace/tree_change.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "runtime/files/fs_util.hpp"
#include "runtime/workspace/tree_apply.hpp"

namespace berth {

namespace fs = std::filesystem;
using fsutil::errstr;
using tree_detail::fd_guard;

std::mutex& workspace_lock(const fs::path& live) {
  static std::mutex registry_mu;
  static std::map<std::string, std::unique_ptr<std::mutex>> locks;
  std::string key = fs::absolute(live).lexically_normal().string();
  while (key.size() > 1 && key.back() == '/') key.pop_back();
  std::lock_guard<std::mutex> g(registry_mu);
  auto& m = locks[key];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}

status new_staging(const fs::path& uploads_dir, fs::path* out) {
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(uploads_dir, ec))) {
    if (::mkdir(uploads_dir.c_str(), 0700) != 0 && errno != EEXIST)
      return status::io_error(fmt::format("mkdir {}: {}", uploads_dir.string(), errstr(errno)));
  }
  for (int attempt = 0; attempt < 8; ++attempt) {
    fs::path p = uploads_dir / fsutil::random_suffix();
    if (::mkdir(p.c_str(), 0700) == 0) {
      *out = p;
      return status::ok();
    }
    if (errno != EEXIST) return status::io_error(fmt::format("mkdir {}: {}", p.string(), errstr(errno)));
  }
  return status::io_error("no free staging name under " + uploads_dir.string());
}

status check_tree_path(const std::string& rel) {
  auto bad = [&](const std::string& why) {
    std::string shown = rel.size() > 80 ? rel.substr(0, 80) + "…" : rel;
    for (auto& ch : shown)
      if (ch == '\0') ch = '?';
    return status::invalid_argument(fmt::format("invalid path \"{}\": {}", shown, why));
  };
  if (rel.empty()) return bad("empty");
  if (rel.size() > 4096) return bad("longer than 4096 bytes");
  if (rel.find('\0') != std::string::npos) return bad("contains a NUL byte");
  if (rel.front() == '/') return bad("absolute (it must be relative to the tree)");
  for (auto& c : fsutil::split_slash(rel)) {
    if (c.empty()) return bad("an empty component (\"//\" or a trailing \"/\")");
    if (c == "." || c == "..") return bad("a \".\" or \"..\" component");
    if (c.size() > 255) return bad("a component longer than 255 bytes");
    if (c == ".git") return bad("inside .git (not part of the tree)");
  }
  return status::ok();
}

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The change is over (done, refused or failed): the intent first (so nothing is ever re-applied),
// then the rest of the staging folder.
void drop_staging(const fs::path& staging) {
  if (staging.empty()) return;
  ::unlink((staging / "APPLY").c_str());
  fsutil::force_remove(staging);
}

// Checks made before the intent is written, so a change that cannot apply never touches live.
status prepare(const fs::path& live, const tree_change& c, const sandbox_identity& owner,
               tree_detail::apply_intent* in) {
  fd_guard sdir(::open(c.staging.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (sdir.fd < 0) return status::io_error(fmt::format("open {}: {}", c.staging.string(), errstr(errno)));
  if (c.what == tree_change::kind::replace_tree) {
    fd_guard tree(tree_detail::open_dir_at(sdir.fd, "tree"));
    if (tree.fd < 0) return status::io_error(fmt::format("open {}/tree: {}", c.staging.string(), errstr(errno)));
    return tree_detail::prepare_new_tree(tree.fd, c.staging / "tree", owner, &in->entries);
  }
  // write_file: the parents may be missing (made later), never a link or a file; the target no folder.
  fd_guard root(::open(live.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (root.fd < 0) return status::io_error(fmt::format("open {}: {}", live.string(), errstr(errno)));
  fd_guard parent;
  std::string leaf;
  auto s = tree_detail::open_parent(root.fd, c.path, false, owner, &parent, &leaf);
  if (!s && s.which() != status::code::not_found) return s;
  struct stat st;
  if (s && ::fstatat(parent.fd, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
    return status::invalid_argument(c.path + " is a folder");
  fd_guard file(::openat(sdir.fd, "file", O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (file.fd < 0 || ::fstat(file.fd, &st) != 0 || !S_ISREG(st.st_mode))
    return status::io_error(fmt::format("{}/file is not a staged file", c.staging.string()));
  if (::fchmod(file.fd, in->change.mode) != 0 ||
      (owner.uid != 0 && ::fchown(file.fd, owner.uid, owner.gid) != 0) || ::fsync(file.fd) != 0)
    return status::io_error(fmt::format("prepare {}/file: {}", c.staging.string(), errstr(errno)));
  return status::ok();
}

}  // namespace

status apply_tree_change(const fs::path& live, const tree_change& c, const sandbox_identity& owner) {
  tree_detail::apply_intent in;
  in.change = c;
  in.change.mode = c.mode & 0755;
  in.begun_ns = now_ns();
  if (c.what != tree_change::kind::replace_tree) {
    auto s = check_tree_path(c.path);
    if (!s) {
      drop_staging(c.staging);
      return s;
    }
  }
  // One unlink: nothing to stage, nothing to finish after a crash.
  if (c.what == tree_change::kind::delete_file) return tree_detail::run_apply(live, {}, in, owner);
  auto s = prepare(live, c, owner, &in);
  if (s) {
    fd_guard sdir(::open(c.staging.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    s = sdir.fd < 0 ? status::io_error(fmt::format("open {}: {}", c.staging.string(), errstr(errno)))
                    : tree_detail::write_intent(sdir.fd, c.staging, in);
    if (s) {
      s = tree_detail::run_apply(live, c.staging, in, owner);
      if (s.which() == status::code::io_error)
        s = status::io_error(s.message() + " (the tree may hold part of the change)");
    }
  }
  drop_staging(c.staging);
  return s;
}

namespace {

// The staging folders under uploads_dir: those with a complete intent go to `pending`; the
// others older than `older_than` are removed (see finish_pending).
status scan_staging(const fs::path& uploads_dir, fs::file_time_type older_than,
                    std::vector<tree_detail::apply_intent>* pending) {
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(uploads_dir, ec))) return status::ok();
  for (fs::directory_iterator it(uploads_dir, ec), end; !ec && it != end; it.increment(ec)) {
    tree_detail::apply_intent in;
    auto s = tree_detail::read_intent(it->path(), &in);
    if (s) {
      pending->push_back(std::move(in));
      continue;
    }
    if (s.which() == status::code::io_error) return s;
    // No complete intent: an upload that never reached its apply. Old ones are leftovers of a
    // crash; newer ones may be uploads still running.
    auto t = fs::last_write_time(it->path(), ec);
    if (ec || t < older_than) fsutil::force_remove(it->path());
    ec.clear();
  }
  if (ec) return status::io_error(fmt::format("list {}: {}", uploads_dir.string(), ec.message()));
  return status::ok();
}

}  // namespace

status sweep_staging(const fs::path& uploads_dir, fs::file_time_type older_than, bool* begun) {
  std::vector<tree_detail::apply_intent> pending;
  auto s = scan_staging(uploads_dir, older_than, &pending);
  *begun = !pending.empty();
  return s;
}

status finish_pending(const fs::path& uploads_dir, const fs::path& live, const sandbox_identity& owner,
                      fs::file_time_type older_than, std::vector<tree_change>* finished) {
  finished->clear();
  std::vector<tree_detail::apply_intent> pending;
  if (auto s = scan_staging(uploads_dir, older_than, &pending); !s) return s;
  std::sort(pending.begin(), pending.end(),
            [](const auto& a, const auto& b) { return a.begun_ns < b.begun_ns; });
  for (auto& in : pending) {
    auto s = tree_detail::run_apply(live, in.change.staging, in, owner);
    if (!s && s.which() != status::code::invalid_argument) return s;
    if (!s)  // the tree no longer takes it (e.g. the app made a folder of a file's parent): dropped
      spdlog::warn("workspace {}: a change interrupted by a restart cannot be finished: {}", live.string(), s.message());
    drop_staging(in.change.staging);
    if (s) finished->push_back(in.change);
  }
  return status::ok();
}

status open_tree_file(const fs::path& live, const std::string& rel, int* fd, uint64_t* size) {
  auto s = check_tree_path(rel);
  if (!s) return s;
  fd_guard root(::open(live.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (root.fd < 0) {
    if (errno == ENOENT) return status::not_found(live.string() + " does not exist");
    return status::io_error(fmt::format("open {}: {}", live.string(), errstr(errno)));
  }
  fd_guard parent;
  std::string leaf;
  s = tree_detail::open_parent(root.fd, rel, false, {}, &parent, &leaf);
  if (!s) return s.which() == status::code::not_found ? status::not_found(rel + " does not exist") : s;
  // O_NONBLOCK: a fifo planted there must not block the open (it is refused below).
  fd_guard f(::openat(parent.fd, leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (f.fd < 0) {
    if (errno == ENOENT) return status::not_found(rel + " does not exist");
    if (errno == ELOOP) return status::invalid_argument(rel + " is a symlink");
    return status::io_error(fmt::format("open {}: {}", rel, errstr(errno)));
  }
  struct stat st;
  if (::fstat(f.fd, &st) != 0) return status::io_error(fmt::format("stat {}: {}", rel, errstr(errno)));
  if (S_ISDIR(st.st_mode)) return status::invalid_argument(rel + " is a folder");
  if (!S_ISREG(st.st_mode)) return status::invalid_argument(rel + " is not a regular file");
  ::fcntl(f.fd, F_SETFL, ::fcntl(f.fd, F_GETFL) & ~O_NONBLOCK);
  *size = static_cast<uint64_t>(st.st_size);
  *fd = f.release();
  return status::ok();
}

}  // namespace berth
