// A deploy's consistent copy of a live workspace (see workspace_snapshot.hpp): one function,
// sync(), makes the copy equal to the live tree as it walks it and counts what it had to fix;
// the first pass starts from nothing (so it copies everything), later passes fix what changed,
// until one pass has nothing to fix. Files are copied with the path snapshot's own copy
// (runtime/release/source_file_copy.hpp), so links, modes and the exec gate work the same way.
#include "runtime/workspace/workspace_snapshot.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include "runtime/files/dir_list.hpp"
#include "runtime/release/source_file_copy.hpp"
#include "runtime/release/source_snapshot.hpp"
#include "runtime/release/sha256_digest.hpp"

namespace berth {

namespace fs = std::filesystem;
using namespace source_detail;
using release_detail::sha256_digest;

namespace {

constexpr const char* kBusyPrefix = "source_busy:";

// What the copy holds for one entry, and what it was copied from.
struct node {
  char type = 'd';
  file_identity source, copy;  // files: the live file as read, the copy as closed
  bool settled = false;        // files: a later write to the live file will change its identity
  std::string target;          // links: the live link's target text
  uint32_t mode = 0;           // folders
  std::map<std::string, node> children;
};

class syncer {
 public:
  syncer(tree_hash_cache* cache, link_roots roots) : cache_(cache), roots_(std::move(roots)) {}

  int fixes = 0;            // differences found (and fixed) in this pass
  std::string first_fix;    // the first of them, for the busy message
  int64_t newest_unsettled = 0;  // the newest ctime of a file copied too soon after a write

  void start_pass() {
    fixes = 0;
    first_fix.clear();
    newest_unsettled = 0;
  }

  // Makes the copy's folder open as `copy_dir` (holding `dir`) equal to the live folder open as
  // `live_dir`, at `rel` in the tree.
  status sync(int live_dir, int copy_dir, const fs::path& live_shown, const fs::path& copy_shown,
              const std::string& rel, node& dir) {
    std::vector<std::string> names;
    if (auto s = fsutil::list_dir(live_dir, live_shown, fsutil::dot_git::skip, &names); !s) return s;
    std::set<std::string> present;
    for (auto& name : names) {
      std::string path = rel.empty() ? name : rel + "/" + name;
      fs::path from = live_shown / name, to = copy_shown / name;
      struct stat st;
      if (::fstatat(live_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // gone: removed from the copy below
        return status::io_error(fmt::format("stat {}: {}", from.string(), errstr(errno)));
      }
      char type = S_ISREG(st.st_mode) ? 'f' : S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : 0;
      if (type == 0) continue;  // fifos, sockets, devices: not source
      auto it = dir.children.find(name);
      if (it != dir.children.end() && it->second.type != type) {
        if (auto s = remove_copy(copy_dir, name, to, it->second); !s) return s;
        dir.children.erase(it);
        it = dir.children.end();
        fixed(path);
      }
      present.insert(name);
      status s;
      if (type == 'f') s = sync_file(live_dir, copy_dir, name, from, to, path, st, dir, it);
      else if (type == 'l') s = sync_link(live_dir, copy_dir, name, from, to, path, rel, dir, it);
      else s = sync_folder(live_dir, copy_dir, name, from, to, path, dir, it);
      if (!s) return s;
    }
    for (auto it = dir.children.begin(); it != dir.children.end();) {
      if (present.count(it->first)) {
        ++it;
        continue;
      }
      if (auto s = remove_copy(copy_dir, it->first, copy_shown / it->first, it->second); !s) return s;
      fixed(rel.empty() ? it->first : rel + "/" + it->first);
      it = dir.children.erase(it);
    }
    return status::ok();
  }

 private:
  tree_hash_cache* cache_;
  link_roots roots_;

  void fixed(const std::string& path) {
    if (fixes++ == 0) first_fix = path;
  }


  // The copy is berth's own private folder: removing by path there is safe.
  static status remove_copy(int copy_dir, const std::string& name, const fs::path& shown, const node& n) {
    if (n.type == 'd') {
      force_remove(shown);
      return status::ok();
    }
    if (::unlinkat(copy_dir, name.c_str(), 0) != 0 && errno != ENOENT)
      return status::io_error(fmt::format("remove {}: {}", shown.string(), errstr(errno)));
    return status::ok();
  }

  // True when `name` in the live folder is gone or no longer `type`: the tree changed under a
  // step, which the next pass sees and copies as it is then.
  static bool moved_on(int live_dir, const std::string& name, mode_t type) {
    struct stat st;
    if (::fstatat(live_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT;
    return (st.st_mode & S_IFMT) != type;
  }

  status sync_file(int live_dir, int copy_dir, const std::string& name, const fs::path& from, const fs::path& to,
                   const std::string& path, const struct stat& st, node& dir,
                   std::map<std::string, node>::iterator it) {
    if (it != dir.children.end()) {
      if (it->second.settled && it->second.source == file_identity::of(st)) return status::ok();
      if (auto s = remove_copy(copy_dir, name, to, it->second); !s) return s;
      dir.children.erase(it);
    }
    fixed(path);
    // Hashed while copied (so the listing needs no second read), unless the cache knows it.
    std::string known;
    bool hash_it = cache_ && !cache_->find(path, file_identity::of(st), &known);
    sha256_digest h;
    file_copy c;
    auto s = copy_file_at(live_dir, copy_dir, name.c_str(), from, to, st.st_mode & 0777, &c,
                          [&h, hash_it](const char* p, size_t n) {
                            if (hash_it) h.bytes(p, n);
                          });
    if (!s) {
      ::unlinkat(copy_dir, name.c_str(), 0);  // a partial copy
      if (c.vanished || moved_on(live_dir, name, S_IFREG)) return status::ok();
      return s;
    }
    node n;
    n.type = 'f';
    n.source = c.before;
    n.copy = c.copy;
    n.settled = c.settled() && c.copy.known();
    if (!n.settled) newest_unsettled = std::max({newest_unsettled, c.before.ctime_ns, c.after.ctime_ns});
    if (n.settled && hash_it) {
      auto sha = h.hex();
      if (!sha.empty()) cache_->put(path, c.before, sha);  // the copy holds exactly these bytes
    }
    dir.children.emplace(name, std::move(n));
    return status::ok();
  }

  status sync_link(int live_dir, int copy_dir, const std::string& name, const fs::path& from, const fs::path& to,
                   const std::string& path, const std::string& rel, node& dir,
                   std::map<std::string, node>::iterator it) {
    std::vector<char> buf(PATH_MAX + 1);
    ssize_t len = ::readlinkat(live_dir, name.c_str(), buf.data(), buf.size());
    if (len < 0) {
      if (errno == ENOENT || errno == EINVAL) return fixed(path), status::ok();  // the next pass sees what it is now
      return status::io_error(fmt::format("readlink {}: {}", from.string(), errstr(errno)));
    }
    if (static_cast<size_t>(len) >= buf.size())
      return status::io_error(fmt::format("readlink {}: target too long", from.string()));
    std::string target(buf.data(), static_cast<size_t>(len));
    if (it != dir.children.end()) {
      if (it->second.target == target) return status::ok();
      if (auto s = remove_copy(copy_dir, name, to, it->second); !s) return s;
      dir.children.erase(it);
    }
    fixed(path);
    auto copied = link_target(target, fs::path(rel), roots_);
    if (::symlinkat(copied.c_str(), copy_dir, name.c_str()) != 0)
      return status::io_error(fmt::format("symlink {}: {}", to.string(), errstr(errno)));
    node n;
    n.type = 'l';
    n.target = std::move(target);
    dir.children.emplace(name, std::move(n));
    return status::ok();
  }

  status sync_folder(int live_dir, int copy_dir, const std::string& name, const fs::path& from, const fs::path& to,
                     const std::string& path, node& dir, std::map<std::string, node>::iterator it) {
    fd_guard sub_live(::openat(live_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st;
    if (sub_live.fd < 0 || ::fstat(sub_live.fd, &st) != 0) {
      if (moved_on(live_dir, name, S_IFDIR)) return fixed(path), status::ok();
      return status::io_error(fmt::format("open {}: {}", from.string(), errstr(errno)));
    }
    if (it == dir.children.end()) {
      if (::mkdirat(copy_dir, name.c_str(), 0700) != 0)
        return status::io_error(fmt::format("mkdir {}: {}", to.string(), errstr(errno)));
      it = dir.children.emplace(name, node{}).first;
      it->second.mode = st.st_mode & 0777;
      fixed(path);
    } else if (it->second.mode != (st.st_mode & 0777)) {
      it->second.mode = st.st_mode & 0777;
      fixed(path);
    }
    fd_guard sub_copy(::openat(copy_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sub_copy.fd < 0) return status::io_error(fmt::format("open {}: {}", to.string(), errstr(errno)));
    return sync(sub_live.fd, sub_copy.fd, from, to, path, it->second);
  }
};

// Folder modes last (deepest first), so read-only folders could be filled.
status apply_folder_modes(const fs::path& at, const node& dir) {
  for (auto& [name, n] : dir.children)
    if (n.type == 'd')
      if (auto s = apply_folder_modes(at / name, n); !s) return s;
  if (::chmod(at.c_str(), dir.mode) != 0)
    return status::io_error(fmt::format("chmod {}: {}", at.string(), errstr(errno)));
  return status::ok();
}

void collect(const node& dir, const std::string& rel, snapshot_record* record, int64_t* newest_copy) {
  for (auto& [name, n] : dir.children) {
    std::string path = rel.empty() ? name : rel + "/" + name;
    if (n.type == 'f') {
      (*record)[path] = {n.source, n.copy};
      *newest_copy = std::max(*newest_copy, n.copy.ctime_ns);
    } else if (n.type == 'd') {
      collect(n, path, record, newest_copy);
    }
  }
}

void wait_past(int64_t ctime_ns) {
  while (coarse_now_ns() <= ctime_ns + kTickMarginNs) std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

}  // namespace

bool is_source_busy(const status& s) {
  return s.which() == status::code::corruption && s.message().rfind(kBusyPrefix, 0) == 0;
}

status snapshot_workspace(const fs::path& live, const fs::path& dest, tree_hash_cache* cache,
                          snapshot_record* record, tree_listing* listing, int rounds) {
  if (record) record->clear();
  std::error_code ec;
  fs::path src = fs::canonical(live, ec);
  if (ec) return status::not_found(fmt::format("workspace {} not found", live.string()));
  fs::path d = fs::weakly_canonical(fs::absolute(dest, ec), ec);
  if (ec || d.empty() || d == d.root_path())
    return status::invalid_argument(fmt::format("invalid snapshot dest '{}'", dest.string()));
  if (d.filename().empty()) d = d.parent_path();
  if (fsutil::inside(src, d) || fsutil::inside(d, src))
    return status::invalid_argument(
        fmt::format("snapshot dest {} and workspace {} overlap", dest.string(), live.string()));
  fs::create_directories(d.parent_path(), ec);
  if (ec) return status::io_error(fmt::format("mkdir {}: {}", d.parent_path().string(), ec.message()));

  tree_hash_cache own;  // without a cache of the caller's, the hashes read while copying still serve the listing
  tree_hash_cache* hashes = cache ? cache : &own;
  link_roots roots{fs::absolute(live, ec).lexically_normal(), src};
  if (!roots.given.empty() && roots.given.filename().empty()) roots.given = roots.given.parent_path();

  fs::path tmp = temp_sibling(d, ".tmp-");
  if (::mkdir(tmp.c_str(), 0700) != 0)
    return status::io_error(fmt::format("mkdir {}: {}", tmp.string(), errstr(errno)));
  auto fail = [&tmp](status s) {
    force_remove(tmp);
    return s;
  };
  fd_guard tmp_fd(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (tmp_fd.fd < 0) return fail(status::io_error(fmt::format("open {}: {}", tmp.string(), errstr(errno))));

  node root;
  syncer sync(hashes, roots);
  for (int pass = 1;; ++pass) {
    if (sync.newest_unsettled) wait_past(sync.newest_unsettled);  // so a recopy can settle
    fd_guard live_fd(::open(src.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st;
    if (live_fd.fd < 0 || ::fstat(live_fd.fd, &st) != 0) {
      int err = errno;
      if (err == ENOENT) return fail(status::not_found(fmt::format("workspace {} not found", live.string())));
      return fail(status::io_error(fmt::format("open {}: {}", src.string(), errstr(err))));
    }
    sync.start_pass();
    if (root.mode != (st.st_mode & 0777)) {
      root.mode = st.st_mode & 0777;
      if (pass > 1) sync.fixes++;
    }
    if (auto s = sync.sync(live_fd.fd, tmp_fd.fd, src, tmp, "", root); !s) return fail(s);
    if (sync.fixes == 0) break;
    if (pass >= rounds)
      return fail(status::corruption(fmt::format("{} {} kept changing while it was copied", kBusyPrefix,
                                                 sync.first_fix.empty() ? "." : sync.first_fix)));
  }
  if (auto s = apply_folder_modes(tmp, root); !s) return fail(s);

  snapshot_record copied;
  int64_t newest_copy = 0;
  collect(root, "", &copied, &newest_copy);
  if (listing)
    if (auto s = hash_tree(tmp, listing, hashes, &copied); !s) return fail(s);
  // A build that rewrites a copy must change its ctime (as snapshot_local waits too).
  if (record) wait_past(newest_copy);
  if (auto s = install(tmp, d); !s) return s;
  if (record) *record = std::move(copied);
  return status::ok();
}

}  // namespace berth
