// Hashing the artifacts of a build (the format is in release.hpp): one pass over the walked
// entries that hashes them and, when packaging, copies them, reading files with O_NOFOLLOW.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <utility>

#include <fmt/format.h>
#include "runtime/files/fs_util.hpp"
#include "runtime/process/exec_gate.hpp"
#include "runtime/release/artifacts.hpp"
#include "runtime/release/sha256_digest.hpp"

namespace berth::release_detail {

namespace {

using fsutil::errstr;
using fsutil::write_all;

status copy_and_hash_file(const fs::path& root, const std::string& rel, const entry& e,
                          const fs::path* dest, sha256_digest* h) {
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
  std::optional<exec_gate_scope> writing;  // from the copy's open to its close (exec_gate.hpp)
  if (dest) {
    writing.emplace(exec_gate::kind::write);
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
  uint64_t total = 0;
  status result = fsutil::read_chunks(in, rel, [&](const char* p, size_t n) {
    total += n;
    if (total > size) return status::corruption(fmt::format("{} changed while packaging", rel));
    h->bytes(p, n);
    if (out >= 0 && !write_all(out, p, n))
      return status::io_error(fmt::format("write {}: {}", out_path.string(), errstr(errno)));
    return status::ok();
  });
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

// dest/rel, its parent folders made.
fs::path placed(const fs::path& dest, const fs::path& rel) {
  fs::path p = dest / rel;
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  return p;
}

}  // namespace

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

status process(const fs::path& root, const entry_map& entries, const fs::path* dest, std::string* hex) {
  sha256_digest h;
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
          auto p = placed(*dest, rel);
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
          auto p = placed(*dest, rel);
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

}  // namespace berth::release_detail
