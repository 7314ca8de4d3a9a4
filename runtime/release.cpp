#include "runtime/release.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <openssl/evp.h>
#include "runtime/fs_util.hpp"

namespace berth {

namespace fs = std::filesystem;

namespace {

using fsutil::errstr;
using fsutil::force_remove;
using fsutil::inside;
using fsutil::random_suffix;

constexpr mode_t kModeMask = 0777;  // setuid/setgid/sticky are never hashed nor copied

enum class kind { file, dir, link };

struct entry {
  kind k = kind::file;
  fs::path abs;        // where it is in the build dir
  uint32_t mode = 0;   // files and dirs
  std::string target;  // links, as re-created in the release
};
// Keyed by the relative path in generic form; std::map gives the byte-order sort and dedups
// overlapping artifacts ("dist" and "dist/a.js").
using entry_map = std::map<std::string, entry>;

class sha256 {
 public:
  sha256() : ctx_(EVP_MD_CTX_new()) {
    ok_ = ctx_ != nullptr && EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1;
  }
  ~sha256() { EVP_MD_CTX_free(ctx_); }
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;

  void bytes(const void* p, size_t n) {
    if (ok_ && n > 0) ok_ = EVP_DigestUpdate(ctx_, p, n) == 1;
  }
  void u64(uint64_t v) {
    unsigned char b[8];
    for (int i = 7; i >= 0; --i, v >>= 8) b[i] = static_cast<unsigned char>(v & 0xff);
    bytes(b, sizeof b);
  }
  void str(const std::string& s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
  // "" if OpenSSL failed somewhere.
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!ok_ || EVP_DigestFinal_ex(ctx_, md, &n) != 1) return "";
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < n; ++i) {
      out += digits[md[i] >> 4];
      out += digits[md[i] & 0xf];
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
  bool ok_ = false;
};

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
    auto s = add_tree(root, abs / name, rel == "." ? name : rel / name, out);
    if (!s) return s;
  }
  if (ec) return status::io_error(fmt::format("list {}: {}", rel.string(), ec.message()));
  return status::ok();
}

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

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Opens the regular file `abs` (a path below `root` with no symlink in it, as collect() found
// it) for reading one component at a time, each with O_NOFOLLOW: if any part of the path has
// become a symlink since (a directory swapped for a link to /etc), the open fails with ELOOP or
// ENOTDIR instead of reading outside the build dir. -1 with errno set on failure.
int open_below(const fs::path& root, const fs::path& abs) {
  fs::path rel = abs.lexically_relative(root);
  if (rel.empty() || *rel.begin() == "..") {
    errno = EXDEV;
    return -1;
  }
  int dir = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0) return -1;
  std::vector<fs::path> parts(rel.begin(), rel.end());
  for (size_t i = 0; i < parts.size(); ++i) {
    bool last = i + 1 == parts.size();
    // O_NONBLOCK: a fifo swapped in must not block the open (the caller's fstat refuses it).
    int flags = last ? (O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
                     : (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int next = ::openat(dir, parts[i].c_str(), flags);
    int err = errno;
    ::close(dir);
    if (next < 0) {
      errno = err;
      return -1;
    }
    dir = next;
  }
  return dir;
}

status copy_and_hash_file(const fs::path& root, const std::string& rel, const entry& e,
                          const fs::path* dest, sha256* h) {
  h->str("file");
  h->str(rel);
  h->u64(e.mode);
  int in = open_below(root, e.abs);
  if (in < 0) {
    if (errno == ELOOP || errno == ENOTDIR)
      return status::corruption(fmt::format("{} changed while packaging: a symlink appeared in its path", rel));
    return status::io_error(fmt::format("open {}: {}", rel, errstr(errno)));
  }
  struct stat st;
  if (::fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(in);
    return status::corruption(fmt::format("{} changed while packaging", rel));
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  h->u64(size);
  int out = -1;
  fs::path out_path;
  if (dest) {
    out_path = *dest / rel;
    std::error_code ec;
    fs::create_directories(out_path.parent_path(), ec);
    out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
      int err = errno;
      ::close(in);
      return status::io_error(fmt::format("create {}: {}", out_path.string(), errstr(err)));
    }
  }
  std::vector<char> buf(1 << 16);
  uint64_t total = 0;
  status result;
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      result = status::io_error(fmt::format("read {}: {}", rel, errstr(errno)));
      break;
    }
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > size) break;
    h->bytes(buf.data(), static_cast<size_t>(n));
    if (out >= 0 && !write_all(out, buf.data(), static_cast<size_t>(n))) {
      result = status::io_error(fmt::format("write {}: {}", out_path.string(), errstr(errno)));
      break;
    }
  }
  ::close(in);
  if (result && total != size) result = status::corruption(fmt::format("{} changed while packaging", rel));
  if (out >= 0) {
    if (result && ::fchmod(out, e.mode) != 0)
      result = status::io_error(fmt::format("chmod {}: {}", out_path.string(), errstr(errno)));
    if (::close(out) != 0 && result)
      result = status::io_error(fmt::format("write {}: {}", out_path.string(), errstr(errno)));
  }
  return result;
}

// Hashes the entries in order; with `dest`, also re-creates them under it.
status process(const fs::path& root, const entry_map& entries, const fs::path* dest, std::string* hex) {
  sha256 h;
  h.str("berth-release-v1");
  std::vector<std::pair<fs::path, uint32_t>> dirs;  // modes applied last, deepest first
  for (auto& [rel, e] : entries) {
    switch (e.k) {
      case kind::file: {
        auto s = copy_and_hash_file(root, rel, e, dest, &h);
        if (!s) return s;
        break;
      }
      case kind::dir: {
        h.str("dir");
        h.str(rel);
        h.u64(e.mode);
        if (dest) {
          fs::path p = *dest / rel;
          std::error_code ec;
          fs::create_directories(p.parent_path(), ec);
          if (::mkdir(p.c_str(), 0700) != 0 && !(errno == EEXIST && fs::is_directory(fs::symlink_status(p))))
            return status::io_error(fmt::format("mkdir {}: {}", p.string(), errstr(errno)));
          ::chmod(p.c_str(), 0700);
          dirs.emplace_back(p, e.mode);
        }
        break;
      }
      case kind::link: {
        h.str("link");
        h.str(rel);
        h.str(e.target);
        if (dest) {
          fs::path p = *dest / rel;
          std::error_code ec;
          fs::create_directories(p.parent_path(), ec);
          if (::symlink(e.target.c_str(), p.c_str()) != 0)
            return status::io_error(fmt::format("symlink {}: {}", p.string(), errstr(errno)));
        }
        break;
      }
    }
  }
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it)
    if (::chmod(it->first.c_str(), it->second) != 0)
      return status::io_error(fmt::format("chmod {}: {}", it->first.string(), errstr(errno)));
  *hex = h.hex();
  if (hex->empty()) return status::io_error("sha256 failed (OpenSSL)");
  return status::ok();
}

// remove_all that also copes with read-only directories (copied modes such as 0555).

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
                       const fs::path& releases_dir, const std::string& hash12, fs::path* out) {
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
  int fd = ::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(status::io_error(fmt::format("open {}: {}", tmp.string(), errstr(errno))));
  int rc = ::syncfs(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return fail(status::io_error(fmt::format("sync {}: {}", tmp.string(), errstr(err))));

  if (::rename(tmp.c_str(), final_dir.c_str()) != 0) {
    err = errno;
    if ((err == EEXIST || err == ENOTEMPTY) && fs::is_directory(fs::symlink_status(final_dir, ec)))
      return fail(status::ok());  // packaged concurrently: same content, keep the first
    return fail(status::io_error(fmt::format("rename {} -> {}: {}", tmp.string(), final_dir.string(), errstr(err))));
  }
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
  fsync_dir(releases_dir);
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
