// The content hash of a source tree (see tree_hash.hpp): a walk that opens every folder and
// file relative to its open parent with O_NOFOLLOW, and a per-tree cache of file hashes.
#include "runtime/workspace/tree_hash.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <map>
#include <vector>

#include <fmt/format.h>
#include "runtime/files/dir_list.hpp"
#include "runtime/files/fs_util.hpp"
#include "runtime/release/sha256_digest.hpp"

namespace berth {

namespace fs = std::filesystem;
using fsutil::errstr;
using release_detail::sha256_digest;

namespace {

// A write within this long of "now" might not move the file's timestamps (they come from a
// coarse clock), so a hash read that recently is not remembered.
constexpr int64_t kRecentNs = 50'000'000;

int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct fd_closer {
  int fd;
  ~fd_closer() {
    if (fd >= 0) ::close(fd);
  }
};

status changed_while_hashed(const fs::path& shown) {
  return status::io_error(fmt::format("{} changed while the tree was hashed (it is now another kind of file)",
                                      shown.string()));
}

class walker {
 public:
  walker(tree_hash_cache* cache, const snapshot_record* copied_from) : cache_(cache), from_(copied_from) {}

  std::vector<tree_entry> entries;

  // Lists the folder open as `dir` (at `rel` below the root, "" for the root) and everything below.
  status walk(int dir, const fs::path& shown, const std::string& rel) {
    std::vector<std::string> names;
    if (auto s = fsutil::list_dir(dir, shown, fsutil::dot_git::skip, &names); !s) return s;
    for (auto& name : names) {
      std::string path = rel.empty() ? name : rel + "/" + name;
      fs::path at = shown / name;
      struct stat st;
      if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // removed meanwhile: not part of the tree
        return status::io_error(fmt::format("stat {}: {}", at.string(), errstr(errno)));
      }
      tree_entry e;
      e.path = path;
      e.mode = st.st_mode & 0777;
      if (S_ISREG(st.st_mode)) {
        e.type = 'f';
        bool gone = false;
        if (auto s = hash_file(dir, name, at, &e, &gone); !s) return s;
        if (gone) continue;
        entries.push_back(std::move(e));
      } else if (S_ISLNK(st.st_mode)) {
        e.type = 'l';
        std::vector<char> buf(PATH_MAX + 1);
        ssize_t n = ::readlinkat(dir, name.c_str(), buf.data(), buf.size());
        if (n < 0) {
          if (errno == ENOENT) continue;
          if (errno == EINVAL) return changed_while_hashed(at);
          return status::io_error(fmt::format("readlink {}: {}", at.string(), errstr(errno)));
        }
        if (static_cast<size_t>(n) >= buf.size())
          return status::io_error(fmt::format("readlink {}: target too long", at.string()));
        e.target.assign(buf.data(), static_cast<size_t>(n));
        entries.push_back(std::move(e));
      } else if (S_ISDIR(st.st_mode)) {
        e.type = 'd';
        fd_closer sub{::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
        if (sub.fd < 0) {
          if (errno == ENOENT) continue;
          if (errno == ELOOP || errno == ENOTDIR) return changed_while_hashed(at);
          return status::io_error(fmt::format("open {}: {}", at.string(), errstr(errno)));
        }
        entries.push_back(std::move(e));
        if (auto s = walk(sub.fd, at, path); !s) return s;
      }
      // fifos, sockets, devices: not source.
    }
    return status::ok();
  }

 private:
  tree_hash_cache* cache_;
  const snapshot_record* from_;


  // The identity a file's hash is remembered under: its own, or with `copied_from` the source
  // it is an untouched copy of. False when it must not be looked up or remembered at all.
  bool cache_key(const std::string& path, const file_identity& id, file_identity* key) const {
    if (cache_ == nullptr) return false;
    if (from_ == nullptr) {
      *key = id;
      return true;
    }
    auto it = from_->find(path);
    if (it == from_->end() || it->second.copy != id) return false;  // not (or no longer) a known copy
    *key = it->second.source;
    return true;
  }

  status hash_file(int dir, const std::string& name, const fs::path& shown, tree_entry* e, bool* gone) {
    // O_NONBLOCK: a fifo swapped in meanwhile must not block the open (fstat refuses it below).
    fd_closer in{::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)};
    if (in.fd < 0) {
      if (errno == ENOENT) return *gone = true, status::ok();
      if (errno == ELOOP) return changed_while_hashed(shown);
      return status::io_error(fmt::format("open {}: {}", shown.string(), errstr(errno)));
    }
    struct stat st;
    if (::fstat(in.fd, &st) != 0 || !S_ISREG(st.st_mode)) return changed_while_hashed(shown);
    auto id = file_identity::of(st);
    e->mode = id.mode;
    file_identity key;
    bool cacheable = cache_key(e->path, id, &key);
    if (cacheable && cache_->find(e->path, key, &e->sha256)) {
      e->size = id.size;
      return status::ok();
    }
    sha256_digest h;
    uint64_t size = 0;
    auto read = fsutil::read_chunks(in.fd, shown.string(), [&](const char* p, size_t n) {
      h.bytes(p, n);
      size += n;
      return status::ok();
    });
    if (!read) return read;
    e->size = size;  // what was read, so that size and content always agree
    e->sha256 = h.hex();
    if (e->sha256.empty()) return status::io_error(fmt::format("hash {}: SHA-256 failed", shown.string()));
    struct stat after;
    // Remembered only when nothing wrote to it during the read (put() refuses recent files).
    if (cacheable && ::fstat(in.fd, &after) == 0 && file_identity::of(after) == id) cache_->put(e->path, key, e->sha256);
    return status::ok();
  }
};

}  // namespace

bool tree_hash_cache::find(const std::string& path, const file_identity& id, std::string* sha256) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_path_.find(path);
  if (it == by_path_.end() || it->second.first != id) return false;
  *sha256 = it->second.second;
  return true;
}

void tree_hash_cache::put(const std::string& path, const file_identity& id, const std::string& sha256) {
  if (!id.known() || std::max(id.mtime_ns, id.ctime_ns) + kRecentNs > now_ns()) return;
  std::lock_guard<std::mutex> lock(mu_);
  by_path_[path] = {id, sha256};
}

void tree_hash_cache::forget_all() {
  std::lock_guard<std::mutex> lock(mu_);
  by_path_.clear();
}

void tree_hash_cache::keep_only(const std::vector<tree_entry>& entries) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = by_path_.begin(); it != by_path_.end();) {
    auto found = std::lower_bound(entries.begin(), entries.end(), it->first,
                                  [](const tree_entry& e, const std::string& p) { return e.path < p; });
    if (found == entries.end() || found->path != it->first)
      it = by_path_.erase(it);
    else
      ++it;
  }
}

namespace {

std::mutex caches_mu;
std::map<std::string, std::shared_ptr<tree_hash_cache>> caches;

std::string cache_key_of(const fs::path& root) {
  std::error_code ec;
  std::string key = fs::absolute(root, ec).lexically_normal().string();
  while (key.size() > 1 && key.back() == '/') key.pop_back();  // "/a/b/" and "/a/b" are one tree
  return key;
}

}  // namespace

std::shared_ptr<tree_hash_cache> hash_cache_for(const fs::path& root) {
  auto key = cache_key_of(root);
  std::lock_guard<std::mutex> lock(caches_mu);
  auto& cache = caches[key];
  if (!cache) cache = std::make_shared<tree_hash_cache>();
  return cache;
}

void forget_hash_cache(const fs::path& root) {
  auto key = cache_key_of(root);
  std::lock_guard<std::mutex> lock(caches_mu);
  caches.erase(key);
}

status hash_tree(const fs::path& root, tree_listing* out, tree_hash_cache* cache, const snapshot_record* copied_from) {
  fd_closer top{::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
  if (top.fd < 0) {
    if (errno == ENOENT) return status::not_found(fmt::format("{} not found", root.string()));
    return status::io_error(fmt::format("open {}: {}", root.string(), errstr(errno)));
  }
  walker w(cache, copied_from);
  if (auto s = w.walk(top.fd, root, ""); !s) return s;
  std::sort(w.entries.begin(), w.entries.end(),
            [](const tree_entry& a, const tree_entry& b) { return a.path < b.path; });
  tree_listing listing;
  sha256_digest h;
  for (auto& e : w.entries) {
    h.bytes(&e.type, 1);
    h.str(e.path);
    h.u64(e.mode);
    if (e.type == 'f') {
      h.u64(e.size);
      std::string raw = sha256_digest::from_hex(e.sha256);
      if (raw.size() != 32) return status::io_error(fmt::format("hash {}: bad file hash", e.path));
      h.bytes(raw.data(), raw.size());
      ++listing.files;
      listing.bytes += e.size;
    } else if (e.type == 'l') {
      h.str(e.target);
    }
  }
  listing.hash = h.hex();
  if (listing.hash.empty()) return status::io_error(fmt::format("hash {}: SHA-256 failed", root.string()));
  if (cache != nullptr) cache->keep_only(w.entries);
  listing.entries = std::move(w.entries);
  *out = std::move(listing);
  return status::ok();
}

}  // namespace berth
