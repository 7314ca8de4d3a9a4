// Moving a staged change into the live tree (tree_apply.hpp). Each step looks at what is there
// now rather than remembering what it did, so running it again after a crash at any point
// finishes the same change: what was already moved is gone from staging, extras already
// removed are gone from live.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <unordered_map>

#include <fmt/format.h>

#include "runtime/files/dir_list.hpp"
#include "runtime/files/fs_util.hpp"
#include "runtime/workspace/tree_apply.hpp"

namespace berth::tree_detail {

using fsutil::errstr;

namespace {

std::string join(const std::string& rel, const std::string& name) { return rel.empty() ? name : rel + "/" + name; }

status io(const std::string& what, const fs::path& shown, int e) {
  if (e == ENOSPC || e == EDQUOT) return status::no_space(fmt::format("{} {}: {}", what, shown.string(), errstr(e)));
  return status::io_error(fmt::format("{} {}: {}", what, shown.string(), errstr(e)));
}

status prepare_dir(int dir, const fs::path& shown, const std::string& rel, const sandbox_identity& owner,
                   std::vector<std::pair<char, std::string>>* entries, int depth) {
  if (depth >= max_depth)
    return status::invalid_argument(fmt::format("{}: folders nested deeper than {}", rel, max_depth));
  std::vector<std::string> names;
  auto s = fsutil::list_dir(dir, shown, fsutil::dot_git::keep, &names);
  if (!s) return s;
  bool chown = owner.uid != 0;
  for (auto& n : names) {
    if (n == ".git") {  // never applied (live `.git` folders are kept as they are): dropped
      s = remove_entry_at(dir, n, shown / n);
      if (!s) return s;
      continue;
    }
    std::string p = join(rel, n);
    struct stat st;
    if (::fstatat(dir, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return io("stat", shown / n, errno);
    if (S_ISDIR(st.st_mode)) {
      fd_guard sub(open_dir_at(dir, n.c_str()));
      if (sub.fd < 0) return io("open", shown / n, errno);
      if (chown && ::fchown(sub.fd, owner.uid, owner.gid) != 0) return io("chown", shown / n, errno);
      entries->emplace_back('d', p);
      s = prepare_dir(sub.fd, shown / n, p, owner, entries, depth + 1);
      if (!s) return s;
    } else if (S_ISREG(st.st_mode)) {
      if (chown && ::fchownat(dir, n.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) != 0)
        return io("chown", shown / n, errno);
      entries->emplace_back('f', p);
    } else if (S_ISLNK(st.st_mode)) {
      if (chown && ::fchownat(dir, n.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) != 0)
        return io("chown", shown / n, errno);
      entries->emplace_back('l', p);
    } else {
      return status::invalid_argument(fmt::format("{} is not a file, folder or symlink", p));
    }
  }
  return status::ok();
}

// rename `name` from `from` into `to`; an entry of another kind in the way (a folder where a file
// goes, a file or link where a folder goes) is removed first.
status move_entry(int from, int to, const std::string& name, const fs::path& shown) {
  for (int round = 0; round < 3; ++round) {
    if (::renameat(from, name.c_str(), to, name.c_str()) == 0) return status::ok();
    int e = errno;
    if (e != EISDIR && e != ENOTEMPTY && e != EEXIST && e != ENOTDIR) return io("rename into", shown, e);
    auto s = remove_entry_at(to, name, shown);
    if (!s) return s;
  }
  return status::io_error(fmt::format("rename into {}: it kept changing", shown.string()));
}

// Moves what is left of the staged folder `sdir` into the live folder `ldir`: a folder live lacks
// moves whole; one it has is merged into (its mode set to the new tree's).
status move_in(int sdir, int ldir, const fs::path& shown, int depth) {
  std::vector<std::string> names;
  auto s = fsutil::list_dir(sdir, shown, fsutil::dot_git::skip, &names);
  if (!s) return s;
  bool changed = false;
  for (auto& n : names) {
    struct stat ss, ls;
    if (::fstatat(sdir, n.c_str(), &ss, AT_SYMLINK_NOFOLLOW) != 0) return io("stat staged", shown / n, errno);
    if (S_ISDIR(ss.st_mode) && ::fstatat(ldir, n.c_str(), &ls, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(ls.st_mode)) {
      fd_guard lsub(open_dir_at(ldir, n.c_str()));
      if (lsub.fd >= 0) {
        fd_guard ssub(open_dir_at(sdir, n.c_str()));
        if (ssub.fd < 0) return io("open staged", shown / n, errno);
        if (depth + 1 >= max_depth) return status::io_error(fmt::format("{}: nested too deep", (shown / n).string()));
        if ((ls.st_mode & 07777) != (ss.st_mode & 07777) && ::fchmod(lsub.fd, ss.st_mode & 07777) != 0)
          return io("chmod", shown / n, errno);
        s = move_in(ssub.fd, lsub.fd, shown / n, depth + 1);
        if (!s) return s;
        continue;
      }
      if (errno != ELOOP && errno != ENOTDIR && errno != ENOENT) return io("open", shown / n, errno);
      // swapped for a link or a file meanwhile: replaced like any other kind below
    }
    s = move_entry(sdir, ldir, n, shown / n);
    if (!s) return s;
    changed = true;
  }
  if (changed && ::fsync(ldir) != 0) return io("sync", shown, errno);
  return status::ok();
}

// Removes every entry of the live folder `ldir` (at `rel`) that the new tree does not hold;
// descends into the folders it holds. `.git` is kept at any depth.
status remove_extras(int ldir, const std::string& rel, const fs::path& shown,
                     const std::unordered_map<std::string, char>& keep, int depth) {
  std::vector<std::string> names;
  auto s = fsutil::list_dir(ldir, shown, fsutil::dot_git::skip, &names);
  if (!s) return s;
  bool changed = false;
  for (auto& n : names) {
    std::string p = join(rel, n);
    auto it = keep.find(p);
    if (it == keep.end()) {
      s = remove_entry_at(ldir, n, shown / n);
      if (!s) return s;
      changed = true;
    } else if (it->second == 'd') {
      fd_guard sub(open_dir_at(ldir, n.c_str()));
      if (sub.fd < 0) continue;  // the app changed it after it was moved in: its business now
      if (depth + 1 >= max_depth) return status::io_error(fmt::format("{}: nested too deep", (shown / n).string()));
      s = remove_extras(sub.fd, p, shown / n, keep, depth + 1);
      if (!s) return s;
    }
  }
  if (changed && ::fsync(ldir) != 0) return io("sync", shown, errno);
  return status::ok();
}

status apply_write(int live_dir, const fs::path& live, const fs::path& staging, const apply_intent& in,
                   const sandbox_identity& owner) {
  fd_guard sdir(::open(staging.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (sdir.fd < 0) return io("open", staging, errno);
  struct stat st;
  if (::fstatat(sdir.fd, "file", &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return status::ok();  // moved in before a crash
    return io("stat", staging / "file", errno);
  }
  fd_guard parent;
  std::string leaf;
  auto s = open_parent(live_dir, in.change.path, true, owner, &parent, &leaf);
  if (!s) return s;
  if (::renameat(sdir.fd, "file", parent.fd, leaf.c_str()) != 0) {
    int e = errno;
    if (e == EISDIR || e == ENOTEMPTY || e == EEXIST)
      return status::invalid_argument(fmt::format("{} is a folder", in.change.path));
    return io("rename into", live / in.change.path, e);
  }
  if (::fsync(parent.fd) != 0) return io("sync", live / in.change.path, errno);
  return status::ok();
}

status apply_delete(int live_dir, const fs::path& live, const apply_intent& in) {
  fd_guard parent;
  std::string leaf;
  auto s = open_parent(live_dir, in.change.path, false, {}, &parent, &leaf);
  if (!s) return s.which() == status::code::not_found ? status::not_found(in.change.path + " does not exist") : s;
  struct stat st;
  if (::fstatat(parent.fd, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return status::not_found(in.change.path + " does not exist");
    return io("stat", live / in.change.path, errno);
  }
  if (S_ISDIR(st.st_mode)) return status::invalid_argument(in.change.path + " is a folder");
  if (::unlinkat(parent.fd, leaf.c_str(), 0) != 0) {
    int e = errno;
    if (e == ENOENT) return status::not_found(in.change.path + " does not exist");
    if (e == EISDIR) return status::invalid_argument(in.change.path + " is a folder");
    return io("remove", live / in.change.path, e);
  }
  if (::fsync(parent.fd) != 0) return io("sync", live / in.change.path, errno);
  return status::ok();
}

}  // namespace

status prepare_new_tree(int tree_dir, const fs::path& shown, const sandbox_identity& owner,
                        std::vector<std::pair<char, std::string>>* entries) {
  entries->clear();
  auto s = prepare_dir(tree_dir, shown, "", owner, entries, 0);
  if (!s) return s;
  // Every staged file's data and folder entries durable in one call (not an fsync per file):
  // once renamed into live they need nothing more.
  if (::syncfs(tree_dir) != 0) return io("sync", shown, errno);
  return status::ok();
}

status run_apply(const fs::path& live, const fs::path& staging, const apply_intent& in,
                 const sandbox_identity& owner) {
  fd_guard live_dir(::open(live.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (live_dir.fd < 0) {
    if (errno == ENOENT) return status::not_found(fmt::format("{} does not exist", live.string()));
    return io("open", live, errno);
  }
  switch (in.change.what) {
    case tree_change::kind::write_file: return apply_write(live_dir.fd, live, staging, in, owner);
    case tree_change::kind::delete_file: return apply_delete(live_dir.fd, live, in);
    case tree_change::kind::replace_tree: break;
  }
  fd_guard tree(::open((staging / "tree").c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (tree.fd < 0) return io("open", staging / "tree", errno);
  auto s = move_in(tree.fd, live_dir.fd, live, 0);
  if (!s) return s;
  std::unordered_map<std::string, char> keep;
  keep.reserve(in.entries.size());
  for (auto& [t, p] : in.entries) keep.emplace(p, t);
  return remove_extras(live_dir.fd, "", live, keep, 0);
}

}  // namespace berth::tree_detail
