// Descriptor-relative folder helpers and the APPLY intent file (tree_apply.hpp).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runtime/files/dir_list.hpp"
#include "runtime/files/fs_util.hpp"
#include "runtime/workspace/tree_apply.hpp"

namespace berth::tree_detail {

using fsutil::errstr;

fd_guard::~fd_guard() {
  if (fd >= 0) ::close(fd);
}

int fd_guard::release() {
  int f = fd;
  fd = -1;
  return f;
}

int open_dir_at(int dir, const char* name) {
  return ::openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

status remove_entry_at(int dir, const std::string& name, const fs::path& shown, int depth) {
  // The app may swap the entry for another kind while it is removed: a few rounds, each
  // starting again from what is there now.
  for (int round = 0; round < 4; ++round) {
    if (::unlinkat(dir, name.c_str(), 0) == 0 || errno == ENOENT) return status::ok();
    if (errno != EISDIR && errno != EPERM)
      return status::io_error(fmt::format("remove {}: {}", shown.string(), errstr(errno)));
    fd_guard sub(open_dir_at(dir, name.c_str()));
    if (sub.fd < 0) {
      if (errno == ENOENT) return status::ok();
      if (errno == ELOOP || errno == ENOTDIR) continue;  // now a link or a file: unlink it
      return status::io_error(fmt::format("open {}: {}", shown.string(), errstr(errno)));
    }
    if (depth >= max_depth)
      return status::io_error(fmt::format("remove {}: folders nested deeper than {}", shown.string(), max_depth));
    struct stat st;
    if (::geteuid() != 0 && ::fstat(sub.fd, &st) == 0 && (st.st_mode & 0700) != 0700)
      ::fchmod(sub.fd, 0700);  // a read-only folder the app made: berth must empty it
    std::vector<std::string> names;
    auto s = fsutil::list_dir(sub.fd, shown, fsutil::dot_git::keep, &names);
    if (!s) return s;
    for (auto& n : names) {
      s = remove_entry_at(sub.fd, n, shown / n, depth + 1);
      if (!s) return s;
    }
    if (::unlinkat(dir, name.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT) return status::ok();
    if (errno != ENOTEMPTY && errno != EEXIST && errno != ENOTDIR)
      return status::io_error(fmt::format("remove {}: {}", shown.string(), errstr(errno)));
  }
  return status::io_error(fmt::format("remove {}: it kept changing while it was removed", shown.string()));
}

status open_parent(int root, const std::string& rel, bool create, const sandbox_identity& owner,
                   fd_guard* parent, std::string* leaf) {
  std::vector<std::string> parts = fsutil::split_slash(rel);
  fd_guard cur(::dup(root));
  if (cur.fd < 0) return status::io_error(fmt::format("dup: {}", errstr(errno)));
  std::string walked;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const std::string& c = parts[i];
    walked += (walked.empty() ? "" : "/") + c;
    int fd = open_dir_at(cur.fd, c.c_str());
    if (fd < 0 && errno == ENOENT && create) {
      if (::mkdirat(cur.fd, c.c_str(), 0755) != 0 && errno != EEXIST)
        return status::io_error(fmt::format("mkdir {}: {}", walked, errstr(errno)));
      fd = open_dir_at(cur.fd, c.c_str());
      if (fd >= 0) {
        // mkdirat's mode is cut by berth's umask; the app (another uid) must be able to use it.
        if (::fchmod(fd, 0755) != 0 || (owner.uid != 0 && ::fchown(fd, owner.uid, owner.gid) != 0)) {
          int e = errno;
          ::close(fd);
          return status::io_error(fmt::format("mkdir {}: {}", walked, errstr(e)));
        }
        ::fsync(cur.fd);
      }
    }
    if (fd < 0) {
      if (errno == ENOENT) return status::not_found(fmt::format("{} does not exist", walked));
      if (errno == ELOOP || errno == ENOTDIR)
        return status::invalid_argument(fmt::format("{} is a symlink or not a folder (never followed)", walked));
      return status::io_error(fmt::format("open {}: {}", walked, errstr(errno)));
    }
    ::close(cur.release());
    cur.fd = fd;
  }
  parent->fd = cur.release();
  *leaf = parts.back();
  return status::ok();
}

namespace {

const char* op_name(tree_change::kind k) {
  switch (k) {
    case tree_change::kind::replace_tree: return "replace_tree";
    case tree_change::kind::write_file: return "write_file";
    case tree_change::kind::delete_file: return "delete_file";
  }
  return "?";
}

}  // namespace

status write_intent(int staging_dir, const fs::path& staging, const apply_intent& intent) {
  nlohmann::json j{{"version", 1},
                   {"op", op_name(intent.change.what)},
                   {"path", intent.change.path},
                   {"mode", intent.change.mode},
                   {"begun_ns", intent.begun_ns}};
  std::string types;
  auto paths = nlohmann::json::array();
  for (auto& [t, p] : intent.entries) {
    types.push_back(t);
    paths.push_back(p);
  }
  j["types"] = types;
  j["paths"] = std::move(paths);
  std::string text = j.dump();
  const char* tmp = "APPLY.tmp";
  fd_guard out(::openat(staging_dir, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (out.fd < 0) return status::io_error(fmt::format("create {}/{}: {}", staging.string(), tmp, errstr(errno)));
  if (!fsutil::write_all(out.fd, text.data(), text.size())) {
    int e = errno;
    return e == ENOSPC ? status::no_space(fmt::format("write {}/APPLY: {}", staging.string(), errstr(e)))
                       : status::io_error(fmt::format("write {}/APPLY: {}", staging.string(), errstr(e)));
  }
  if (::fsync(out.fd) != 0 || ::close(out.release()) != 0)
    return status::io_error(fmt::format("sync {}/APPLY: {}", staging.string(), errstr(errno)));
  if (::renameat(staging_dir, tmp, staging_dir, "APPLY") != 0 || ::fsync(staging_dir) != 0)
    return status::io_error(fmt::format("rename {}/APPLY: {}", staging.string(), errstr(errno)));
  return status::ok();
}

status read_intent(const fs::path& staging, apply_intent* intent) {
  fd_guard in(::open((staging / "APPLY").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (in.fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return status::not_found(staging.string() + " holds no APPLY");
    return status::io_error(fmt::format("open {}/APPLY: {}", staging.string(), errstr(errno)));
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(in.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return status::io_error(fmt::format("read {}/APPLY: {}", staging.string(), errstr(errno)));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  try {
    auto j = nlohmann::json::parse(text);
    std::string op = j.at("op").get<std::string>();
    tree_change c;
    if (op == "replace_tree") c.what = tree_change::kind::replace_tree;
    else if (op == "write_file") c.what = tree_change::kind::write_file;
    else if (op == "delete_file") c.what = tree_change::kind::delete_file;
    else return status::corruption(fmt::format("{}/APPLY: unknown op {}", staging.string(), op));
    c.path = j.at("path").get<std::string>();
    c.mode = j.at("mode").get<uint32_t>();
    c.staging = staging;
    intent->change = std::move(c);
    intent->begun_ns = j.at("begun_ns").get<int64_t>();
    auto types = j.at("types").get<std::string>();
    auto& paths = j.at("paths");
    if (paths.size() != types.size()) return status::corruption(staging.string() + "/APPLY: types and paths differ");
    intent->entries.clear();
    intent->entries.reserve(types.size());
    for (size_t i = 0; i < types.size(); ++i) intent->entries.emplace_back(types[i], paths[i].get<std::string>());
  } catch (const std::exception& e) {
    return status::corruption(fmt::format("{}/APPLY: {}", staging.string(), e.what()));
  }
  return status::ok();
}

}  // namespace berth::tree_detail
