// Packaging with reuse (see package_build.hpp): one pass over the sorted entries that resumes
// the release hash after the unchanged prefix and fills the release folder with hard links to
// the previous release where the bytes are the same.
#define OPENSSL_SUPPRESS_DEPRECATED  // SHA256_CTX: the only SHA-256 state that can be saved
#include "runtime/release/package_build.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>
#include <openssl/sha.h>
#include "runtime/files/fs_util.hpp"
#include "runtime/process/exec_gate.hpp"
#include "runtime/release/artifacts.hpp"
#include "runtime/release/hash_encoding.hpp"
#include "runtime/release/package_cache.hpp"
#include "runtime/release/release.hpp"
#include "runtime/release/sha256_digest.hpp"

namespace berth {

namespace fs = std::filesystem;
using fsutil::errstr;
using fsutil::write_all;
using namespace release_detail;

namespace {

int64_t us_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
}

// Checkpoints are kept every this many entries or hashed bytes, whichever comes first.
constexpr int64_t kCheckpointEntries = 256;
constexpr uint64_t kCheckpointBytes = 1 << 20;
constexpr size_t kChunk = 1 << 16;

// The release hash's encoding (release.hpp; the same as artifact_hash.cpp's).
struct hasher : hash_encoding<hasher> {
  SHA256_CTX ctx;
  void bytes(const void* p, size_t n) { SHA256_Update(&ctx, p, n); }
  std::string hex() {
    SHA256_CTX copy = ctx;
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_Final(md, &copy);
    return sha256_digest::to_hex(std::string(reinterpret_cast<const char*>(md), sizeof md));
  }
};

hasher initial_state() {
  hasher h;
  SHA256_Init(&h.ctx);
  h.str("berth-release-v1");
  return h;
}

struct fd_guard {
  int fd = -1;
  explicit fd_guard(int f = -1) : fd(f) {}
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
};

bool read_full(int fd, char* p, size_t n, size_t* got) {
  *got = 0;
  while (*got < n) {
    ssize_t r = ::read(fd, p + *got, n - *got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    if (r == 0) break;
    *got += static_cast<size_t>(r);
  }
  return true;
}

// One packaging: the entries, the cache of the last one, and the folder being filled.
class packer {
 public:
  packer(const fs::path& root, const entry_map& entries, const snapshot_record* sources, package_cache cache,
         fs::path prev, package_report* report)
      : root_(root), sources_(sources), cache_(std::move(cache)), prev_(std::move(prev)), report_(report) {
    for (auto& [rel, e] : entries) list_.push_back({&rel, &e});
    for (size_t i = 0; i < cache_.entries.size(); ++i) by_rel_[cache_.entries[i].rel] = i;
  }

  // What this packaging will remember: every entry, with its source identity when proven.
  package_cache next;

  // Finds the unchanged prefix; true when the whole hash is already known (hash_ is set).
  bool plan() {
    size_t n = list_.size();
    next.entries.resize(n);
    for (size_t i = 0; i < n; ++i) next.entries[i] = describe(i);
    prefix_ = 0;
    while (prefix_ < n && prefix_ < cache_.entries.size() && same(next.entries[prefix_], cache_.entries[prefix_]))
      ++prefix_;
    if (prefix_ == n && cache_.entries.size() == n && cache_.hash.size() == 64) {
      hash_ = cache_.hash;
      next.checkpoints = cache_.checkpoints;
      return true;
    }
    h_ = initial_state();
    start_ = 0;
    // The last checkpoint inside the prefix: entries up to it need not be read.
    auto it = cache_.checkpoints.lower_bound(static_cast<int64_t>(prefix_));
    if (it != cache_.checkpoints.begin()) {
      --it;
      h_.ctx = it->second;
      start_ = static_cast<size_t>(it->first) + 1;
      for (auto& [i, ctx] : cache_.checkpoints)
        if (i <= it->first) next.checkpoints[i] = ctx;
    }
    return false;
  }

  // Hashes from the resume point on, and fills `dest` (if given) with every entry.
  status run(const fs::path* dest) {
    std::vector<std::pair<fs::path, uint32_t>> dirs;
    int64_t last_cp = start_ == 0 ? -1 : static_cast<int64_t>(start_) - 1;
    uint64_t bytes_since_cp = 0;
    for (size_t i = 0; i < list_.size(); ++i) {
      const std::string& rel = *list_[i].first;
      const entry& e = *list_[i].second;
      bool hashing = hash_.empty() && i >= start_;
      if (e.k == kind::file) {
        ++report_->files;
        if (hashing) {
          h_.str("file");
          h_.str(rel);
          h_.u64(e.mode);
          h_.u64(e.id.size);
        }
        auto s = place_file(i, rel, e, dest, hashing ? &h_ : nullptr);
        if (!s) return s;
        if (hashing) bytes_since_cp += e.id.size;
      } else if (e.k == kind::dir) {
        if (hashing) {
          h_.str("dir");
          h_.str(rel);
          h_.u64(e.mode);
        }
        if (dest) {
          fs::path p = *dest / rel;
          if (::mkdir(p.c_str(), 0700) != 0 && errno != EEXIST)
            return status::io_error(fmt::format("mkdir {}: {}", p.string(), errstr(errno)));
          dirs.emplace_back(p, e.mode);
        }
      } else {
        if (hashing) {
          h_.str("link");
          h_.str(rel);
          h_.str(e.target);
        }
        if (dest) {
          fs::path p = *dest / rel;
          if (::symlink(e.target.c_str(), p.c_str()) != 0)
            return status::io_error(fmt::format("symlink {}: {}", p.string(), errstr(errno)));
        }
      }
      if (hashing && (static_cast<int64_t>(i) - last_cp >= kCheckpointEntries || bytes_since_cp >= kCheckpointBytes)) {
        next.checkpoints[static_cast<int64_t>(i)] = h_.ctx;
        last_cp = static_cast<int64_t>(i);
        bytes_since_cp = 0;
      }
    }
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it)
      if (::chmod(it->first.c_str(), it->second) != 0)
        return status::io_error(fmt::format("chmod {}: {}", it->first.string(), errstr(errno)));
    if (hash_.empty()) hash_ = h_.hex();
    next.hash = hash_;
    return status::ok();
  }

  const std::string& hash() const { return hash_; }

 private:
  cached_entry describe(size_t i) const {
    const entry& e = *list_[i].second;
    cached_entry c;
    c.rel = *list_[i].first;
    c.kind = static_cast<int>(e.k);
    c.mode = e.mode;
    c.target = e.target;
    if (e.k != kind::file) return c;
    c.size = e.id.size;
    if (!sources_) return c;
    auto it = sources_->find(c.rel);
    // Only an untouched copy stands for its source: the build did not rewrite, replace or chmod it.
    if (it == sources_->end() || it->second.copy != e.id || !it->second.source.known()) return c;
    auto& src = it->second.source;
    if (src.size != e.id.size || src.mode != e.mode) return c;
    c.dev = src.dev;
    c.ino = src.ino;
    c.mtime_ns = src.mtime_ns;
    c.ctime_ns = src.ctime_ns;
    return c;
  }

  static bool same(const cached_entry& a, const cached_entry& b) {
    if (a.rel != b.rel || a.kind != b.kind || a.mode != b.mode || a.target != b.target) return false;
    if (a.kind != static_cast<int>(kind::file)) return true;
    return a.ino != 0 && a.size == b.size && a.dev == b.dev && a.ino == b.ino && a.mtime_ns == b.mtime_ns &&
           a.ctime_ns == b.ctime_ns;
  }

  // The previous release's file for rel when the cache proves it holds the same bytes.
  bool proven_in_prev(size_t i) const {
    if (prev_.empty()) return false;
    auto it = by_rel_.find(*list_[i].first);
    return it != by_rel_.end() && same(next.entries[i], cache_.entries[it->second]);
  }

  // prev/rel if it is a regular file of this size and mode (a candidate to compare with).
  fd_guard open_prev(const std::string& rel, const entry& e) const {
    if (prev_.empty()) return fd_guard();
    fd_guard fd(::open((prev_ / rel).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st;
    if (fd.fd >= 0 &&
        (::fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != e.id.size ||
         (st.st_mode & 0777) != e.mode))
      return fd_guard();
    return fd_guard(::dup(fd.fd));
  }

  bool link_prev(const std::string& rel, const fs::path& to) {
    if (::link((prev_ / rel).c_str(), to.c_str()) != 0) return false;  // EMLINK, gone: copy instead
    ++report_->linked;
    return true;
  }

  status place_file(size_t i, const std::string& rel, const entry& e, const fs::path* dest, hasher* h) {
    fs::path to = dest ? *dest / rel : fs::path();
    bool linked = dest && proven_in_prev(i) && link_prev(rel, to);
    if (!h && (linked || !dest)) {  // its bytes are known: neither read nor copied
      ++report_->unread;
      return status::ok();
    }
    return read_file(rel, e, dest && !linked ? &to : nullptr, h);
  }

  // Reads the build dir's file: into the hash (h), and unless it is already linked (`to` null),
  // into the release, as a hard link to the previous release's file when the bytes are the same.
  status read_file(const std::string& rel, const entry& e, const fs::path* to, hasher* h) {
    fd_guard in(open_below(root_, e.abs));
    if (in.fd < 0) {
      if (errno == ELOOP || errno == ENOTDIR)
        return status::corruption(fmt::format("{} changed while packaging: a symlink appeared in its path", rel));
      return status::io_error(fmt::format("open {}: {}", rel, errstr(errno)));
    }
    struct stat st;
    if (::fstat(in.fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != e.id.size)
      return status::corruption(fmt::format("{} changed while packaging", rel));
    fd_guard old = to ? open_prev(rel, e) : fd_guard();
    std::optional<exec_gate_scope> writing;  // from the copy's open to its close (exec_gate.hpp)
    fd_guard out;
    auto open_out = [&] {
      if (!writing) writing.emplace(exec_gate::kind::write);
      return open_copy(*to, &out);
    };
    std::vector<char> buf(kChunk), theirs(kChunk);
    uint64_t total = 0;
    for (;;) {
      size_t n = 0;
      if (!read_full(in.fd, buf.data(), kChunk, &n)) return status::io_error(fmt::format("read {}: {}", rel, errstr(errno)));
      if (n == 0) break;
      total += n;
      if (total > e.id.size) break;
      report_->bytes_read += n;
      if (h) h->bytes(buf.data(), n);
      if (!to) continue;
      if (old.fd >= 0) {
        size_t m = 0;
        if (read_full(old.fd, theirs.data(), n, &m) && m == n && std::memcmp(buf.data(), theirs.data(), n) == 0)
          continue;
        ::close(old.fd);
        old.fd = -1;
        // They differ from here: the copy starts with the bytes read so far.
        auto s = open_out();
        if (!s) return s;
        if (auto c = copy_range(in.fd, out.fd, total - n, *to); !c) return c;
      } else if (out.fd < 0) {
        auto s = open_out();
        if (!s) return s;
      }
      if (!write_all(out.fd, buf.data(), n)) return status::io_error(fmt::format("write {}: {}", to->string(), errstr(errno)));
      report_->bytes_written += n;
    }
    if (total != e.id.size) return status::corruption(fmt::format("{} changed while packaging", rel));
    if (!to) return status::ok();
    if (old.fd >= 0 && link_prev(rel, *to)) return status::ok();  // every byte the same
    if (out.fd < 0) {  // an empty file, or the link failed: write it whole
      auto s = open_out();
      if (!s) return s;
      if (auto c = copy_range(in.fd, out.fd, total, *to); !c) return c;
    }
    ++report_->copied;
    if (::fchmod(out.fd, e.mode) != 0) return status::io_error(fmt::format("chmod {}: {}", to->string(), errstr(errno)));
    int fd = out.fd;
    out.fd = -1;
    if (::close(fd) != 0) return status::io_error(fmt::format("write {}: {}", to->string(), errstr(errno)));
    return status::ok();
  }

  static status open_copy(const fs::path& to, fd_guard* out) {
    out->fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out->fd < 0) return status::io_error(fmt::format("create {}: {}", to.string(), errstr(errno)));
    return status::ok();
  }

  // Writes the first `len` bytes of `in` (pread: the read position is left alone) to `out`.
  status copy_range(int in, int out, uint64_t len, const fs::path& to) {
    std::vector<char> buf(kChunk);
    for (uint64_t off = 0; off < len;) {
      ssize_t r = ::pread(in, buf.data(), std::min<uint64_t>(kChunk, len - off), static_cast<off_t>(off));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return status::io_error(fmt::format("read for {}: {}", to.string(), errstr(errno)));
      if (!write_all(out, buf.data(), static_cast<size_t>(r)))
        return status::io_error(fmt::format("write {}: {}", to.string(), errstr(errno)));
      off += static_cast<uint64_t>(r);
      report_->bytes_written += static_cast<uint64_t>(r);
    }
    return status::ok();
  }

  fs::path root_;
  const snapshot_record* sources_;
  package_cache cache_;
  fs::path prev_;
  package_report* report_;
  std::vector<std::pair<const std::string*, const entry*>> list_;
  std::unordered_map<std::string, size_t> by_rel_;
  size_t prefix_ = 0, start_ = 0;
  hasher h_;
  std::string hash_;
};

}  // namespace

fs::path package_cache_path(const fs::path& releases_dir) { return releases_dir / ".package-cache"; }

status package_build(const fs::path& build_dir, const std::vector<std::string>& artifacts,
                     const snapshot_record* sources, const fs::path& releases_dir,
                     const std::function<bool(const std::string&)>& wanted, package_report* out) {
  package_report report;
  auto t0 = std::chrono::steady_clock::now();
  fs::path root;
  entry_map entries;
  if (auto s = collect(build_dir, artifacts, &root, &entries); !s) return s;
  std::error_code ec;
  fs::create_directories(releases_dir, ec);
  if (ec) return status::io_error(fmt::format("mkdir {}: {}", releases_dir.string(), ec.message()));

  auto cache = load_package_cache(package_cache_path(releases_dir));
  std::string cached_release = cache.release;
  fs::path prev;
  if (valid_release_hash(cache.release) && fs::is_directory(fs::symlink_status(releases_dir / cache.release, ec)))
    prev = releases_dir / cache.release;
  packer p(root, entries, sources, std::move(cache), prev, &report);
  auto done = [&](status s) {
    if (s && out) *out = report;
    return s;
  };
  auto remember = [&](const std::string& release) {
    auto t = std::chrono::steady_clock::now();
    p.next.release = release;
    save_package_cache(package_cache_path(releases_dir), p.next);  // a failed save costs a full read next time
    report.save_us = us_since(t);
  };
  auto exists = [&](const std::string& h12) { return fs::is_directory(fs::symlink_status(releases_dir / h12, ec)); };

  bool known = p.plan();
  report.walk_us = us_since(t0);
  if (known) {
    report.hash = p.hash().substr(0, 12);
    if (exists(report.hash) || !wanted(report.hash)) {
      report.files = std::count_if(entries.begin(), entries.end(), [](auto& kv) { return kv.second.k == kind::file; });
      report.unread = report.files;
      if (exists(report.hash) && cached_release != report.hash) remember(report.hash);
      return done(status::ok());
    }
  }
  // The hash is not known yet (or its folder is missing): hash and fill a temp folder at once.
  fs::path tmp = releases_dir / (".package.tmp-" + fsutil::random_suffix());
  if (::mkdir(tmp.c_str(), 0700) != 0)
    return status::io_error(fmt::format("mkdir {}: {}", tmp.string(), errstr(errno)));
  auto fail = [&](status s) {
    fsutil::force_remove(tmp);
    return s;
  };
  auto t1 = std::chrono::steady_clock::now();
  if (auto s = p.run(&tmp); !s) return fail(s);
  report.fill_us = us_since(t1);
  report.hash = p.hash().substr(0, 12);
  fs::path final_dir = releases_dir / report.hash;
  if (exists(report.hash) || !wanted(report.hash)) {
    fsutil::force_remove(tmp);
    if (exists(report.hash)) remember(report.hash);
    return done(status::ok());
  }
  if (::chmod(tmp.c_str(), 0755) != 0)
    return fail(status::io_error(fmt::format("chmod {}: {}", tmp.string(), errstr(errno))));
  if (::rename(tmp.c_str(), final_dir.c_str()) != 0) {
    int err = errno;
    if ((err == EEXIST || err == ENOTEMPTY) && exists(report.hash)) return done(fail(status::ok()));
    return fail(status::io_error(fmt::format("rename {} -> {}: {}", tmp.string(), final_dir.string(), errstr(err))));
  }
  report.created = true;
  remember(report.hash);
  return done(status::ok());
}

}  // namespace berth
