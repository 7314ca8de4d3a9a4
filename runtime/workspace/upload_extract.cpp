// Extraction of an uploaded tar.gz (see upload_extract.hpp). zlib decodes the gzip layer
// (gunzip_reader.hpp: the CRC is checked) and libarchive reads the tar in it; every entry
// is created here with openat/mkdirat/symlinkat relative to its already-open parent folder with
// O_NOFOLLOW, so nothing the archive says can make berth write outside the staging folder.
#include "runtime/workspace/upload_extract.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runtime/files/fs_util.hpp"
#include "runtime/process/exec_gate.hpp"
#include "runtime/workspace/gunzip_reader.hpp"
#include "runtime/workspace/upload_paths.hpp"

namespace berth {

namespace fs = std::filesystem;
using namespace upload_detail;

namespace {

constexpr const char* kLimitPrefix = "limit: ";
constexpr size_t kBlock = 1 << 16;

struct fd_guard {
  int fd = -1;
  explicit fd_guard(int f = -1) : fd(f) {}
  ~fd_guard() { reset(); }
  void reset(int f = -1) {
    if (fd >= 0) ::close(fd);
    fd = f;
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
};

// A write that failed: no_space when the disk (or quota) is full, io_error otherwise.
status disk_error(const char* step, const std::string& what, int e) {
  auto m = fmt::format("{} {}: {}", step, what, fsutil::errstr(e));
  return e == ENOSPC || e == EDQUOT ? status::no_space(m) : status::io_error(m);
}

// The name an entry carries: its bytes as stored (GNU tar, pax with hdrcharset=BINARY), else,
// when berth's locale cannot hold a pax UTF-8 name (the C locale), that UTF-8.
std::string entry_name(archive_entry* e) {
  const char* p = archive_entry_pathname(e);
  if (p == nullptr) p = archive_entry_pathname_utf8(e);
  return p ? p : "";
}

std::string entry_link(archive_entry* e) {
  const char* p = archive_entry_symlink(e);
  if (p == nullptr) p = archive_entry_symlink_utf8(e);
  return p ? p : "";
}

bool is_utf8(const std::string& s) {
  try {
    nlohmann::json(s).dump();  // strict: throws on a byte sequence that is not UTF-8
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

// What is already at `name` in `dir`, for the refusal of a clash.
std::string existing_kind(int dir, const char* name) {
  struct stat st;
  if (::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return "something";
  if (S_ISDIR(st.st_mode)) return "a folder";
  if (S_ISLNK(st.st_mode)) return "a symlink";
  return "a file";
}

// One extraction: the open archive, the staging folder's fd and what was made so far.
class extractor {
 public:
  extractor(struct archive* a, int root, const upload_limits& limits, upload_summary* sum)
      : a_(a), root_(root), limits_(limits), sum_(sum), buf_(kBlock) {}

  status run() {
    for (;;) {
      archive_entry* e = nullptr;
      int r = archive_read_next_header(a_, &e);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return corrupt();
      auto s = entry(e);
      if (!s) return s;
    }
    std::string which;
    if (auto s = links_.check_all(&which); !s) return refuse(which, s.message());
    return status::ok();
  }

 private:
  status corrupt() {
    const char* why = archive_error_string(a_);
    return status::corruption(fmt::format("not a readable tar.gz: {}", why ? why : "unknown error"));
  }

  status refuse(const std::string& name, const std::string& why) {
    sum_->refused = name;
    std::string cut = name.size() > 512 ? name.substr(0, 512) + "..." : name;
    // Quoted as JSON (control characters escaped, bytes that are not UTF-8 replaced), so the
    // message can go into any answer as it is.
    auto shown = nlohmann::json(cut).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return status::invalid_argument(fmt::format("entry {} is refused: {}", shown, why));
  }

  // Every object made (entries and the folders their paths imply) counts against max_files.
  status count_one() {
    if (sum_->files + sum_->dirs + sum_->links + 1 > limits_.max_files)
      return status::invalid_argument(fmt::format("{}the upload holds more than {} entries (--max-upload-files)",
                                                  kLimitPrefix, limits_.max_files));
    return status::ok();
  }

  status over_bytes() const {
    return status::invalid_argument(fmt::format("{}the upload unpacks to more than {} bytes (--max-upload-unpacked-bytes)",
                                                kLimitPrefix, limits_.max_unpacked_bytes));
  }

  status entry(archive_entry* e) {
    std::string name = entry_name(e);
    std::vector<std::string> parts;
    if (auto s = split_entry_path(name, &parts); !s) return refuse(name, s.message());
    if (parts.empty()) return status::ok();  // the root entry "."
    // Every answer about the tree is JSON, which holds UTF-8 only.
    if (!is_utf8(name)) return refuse(name, "a name that is not UTF-8");
    if (const char* hard = archive_entry_hardlink(e))
      return refuse(name, fmt::format("a hard link (to {})", hard));
    auto type = archive_entry_filetype(e);
    switch (type) {
      case AE_IFREG: case AE_IFDIR: case AE_IFLNK: break;
      case AE_IFCHR: return refuse(name, "a character device");
      case AE_IFBLK: return refuse(name, "a block device");
      case AE_IFIFO: return refuse(name, "a fifo");
      case AE_IFSOCK: return refuse(name, "a socket");
      default: return refuse(name, "an entry of an unknown type");
    }
    int parent = -1;
    if (auto s = open_parent(name, parts, &parent); !s) return s;
    const char* leaf = parts.back().c_str();
    if (type == AE_IFDIR) return make_dir(name, parent, leaf);
    if (type == AE_IFLNK) {
      std::string target = entry_link(e);
      if (!is_utf8(target)) return refuse(name, "a symlink whose target is not UTF-8");
      return make_link(name, parts, parent, leaf, target);
    }
    return make_file(name, e, parent, leaf);
  }

  // The folder holding `parts.back()`, opened component by component from the root with
  // O_NOFOLLOW (missing folders are made, 0755). Cached: entries come folder by folder.
  status open_parent(const std::string& name, const std::vector<std::string>& parts, int* out) {
    std::string key = join_path(parts, parts.size() - 1);
    if (parent_.fd >= 0 && key == parent_key_) return *out = parent_.fd, status::ok();
    parent_.reset();
    fd_guard cur(::dup(root_));
    if (cur.fd < 0) return status::io_error(fmt::format("dup: {}", fsutil::errstr(errno)));
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const char* c = parts[i].c_str();
      int fd = ::openat(cur.fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT) {
        if (auto s = count_one(); !s) return s;
        if (::mkdirat(cur.fd, c, 0755) != 0) return disk_error("mkdir", join_path(parts, i + 1), errno);
        ++sum_->dirs;
        fd = ::openat(cur.fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0 && ::fchmod(fd, 0755) != 0) return disk_error("chmod", join_path(parts, i + 1), errno);
      }
      if (fd < 0) {
        int err = errno;
        std::string kind = existing_kind(cur.fd, c), at = join_path(parts, i + 1);
        if (kind == "a symlink") return refuse(name, fmt::format("it passes through the symlink {}", at));
        if (err == ENOTDIR || err == ELOOP) return refuse(name, fmt::format("{} is {}, not a folder", at, kind));
        return disk_error("open", at, err);
      }
      cur.reset(fd);
    }
    parent_.fd = cur.fd;
    cur.fd = -1;
    parent_key_ = key;
    *out = parent_.fd;
    return status::ok();
  }

  status make_dir(const std::string& name, int parent, const char* leaf) {
    if (::mkdirat(parent, leaf, 0755) != 0) {
      if (errno != EEXIST) return disk_error("mkdir", name, errno);
      auto kind = existing_kind(parent, leaf);  // a folder made for an earlier entry: fine
      if (kind != "a folder") return refuse(name, fmt::format("a folder where the archive already has {}", kind));
      return status::ok();
    }
    if (auto s = count_one(); !s) return s;
    ++sum_->dirs;
    fd_guard d(::openat(parent, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (d.fd < 0 || ::fchmod(d.fd, 0755) != 0) return disk_error("chmod", name, errno);
    return status::ok();
  }

  status make_link(const std::string& name, const std::vector<std::string>& parts, int parent, const char* leaf,
                   const std::string& target) {
    if (auto s = links_.add(parts, target); !s) return refuse(name, s.message());
    if (auto s = count_one(); !s) return s;
    if (::symlinkat(target.c_str(), parent, leaf) != 0) {
      if (errno == EEXIST)
        return refuse(name, fmt::format("a symlink where the archive already has {}", existing_kind(parent, leaf)));
      return disk_error("symlink", name, errno);
    }
    ++sum_->links;
    return status::ok();
  }

  status make_file(const std::string& name, archive_entry* e, int parent, const char* leaf) {
    if (auto s = count_one(); !s) return s;
    uint64_t left = limits_.max_unpacked_bytes - sum_->bytes;
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0 &&
        static_cast<uint64_t>(archive_entry_size(e)) > left)
      return fail_at(name, over_bytes());
    exec_gate_scope writing(exec_gate::kind::write);  // the file may be exec'd later (exec_gate.hpp)
    fd_guard out(::openat(parent, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (out.fd < 0) {
      if (errno == EEXIST) {
        auto kind = existing_kind(parent, leaf);
        return refuse(name, kind == "a file" ? "a duplicate file" : fmt::format("a file where the archive already has {}", kind));
      }
      return disk_error("create", name, errno);
    }
    ++sum_->files;
    // Counted as written: the data, not the header, decides what lands on disk.
    for (;;) {
      la_ssize_t n = archive_read_data(a_, buf_.data(), buf_.size());
      if (n < 0) return corrupt();
      if (n == 0) break;
      if (static_cast<uint64_t>(n) > limits_.max_unpacked_bytes - sum_->bytes) return fail_at(name, over_bytes());
      sum_->bytes += static_cast<uint64_t>(n);
      if (!fsutil::write_all(out.fd, buf_.data(), static_cast<size_t>(n))) return disk_error("write", name, errno);
    }
    mode_t mode = (archive_entry_perm(e) & 0755) | 0600;  // no setuid/setgid/sticky, no group/other write
    if (::fchmod(out.fd, mode) != 0) return disk_error("chmod", name, errno);
    if (archive_entry_mtime_is_set(e)) {
      timespec times[2] = {{0, UTIME_OMIT}, {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
      if (::futimens(out.fd, times) != 0) return disk_error("set the time of", name, errno);
    }
    int fd = out.fd;
    out.fd = -1;
    if (::close(fd) != 0) return disk_error("write", name, errno);
    return status::ok();
  }

  // A limit reached at `name`: the summary names the entry, the status stays a limit.
  status fail_at(const std::string& name, status s) {
    sum_->refused = name;
    return s;
  }

  struct archive* a_;
  int root_;
  const upload_limits& limits_;
  upload_summary* sum_;
  std::vector<char> buf_;
  link_table links_;
  fd_guard parent_;
  std::string parent_key_;
};

// Opens `archive` for reading through `gunzip`: gzip (checked by zlib), then tar (ustar, pax
// and GNU tar alike; nothing else).
status open_archive(const fs::path& archive, const upload_limits& limits, gunzip_reader* gunzip,
                    struct archive** out) {
  struct stat st;
  if (::stat(archive.c_str(), &st) != 0) return status::io_error(fmt::format("stat {}: {}", archive.string(), fsutil::errstr(errno)));
  if (st.st_size == 0) return status::corruption("not a readable tar.gz: the body is empty");
  if (static_cast<uint64_t>(st.st_size) > limits.max_bytes)
    return status::invalid_argument(fmt::format("{}the upload is {} bytes, more than {} (--max-upload-bytes)",
                                                kLimitPrefix, st.st_size, limits.max_bytes));
  struct archive* a = archive_read_new();
  if (a == nullptr) return status::io_error("archive_read_new failed");
  archive_read_support_format_tar(a);
  auto s = gunzip->open(a, archive);
  if (!s) {
    archive_read_free(a);
    return s;
  }
  *out = a;
  return status::ok();
}

}  // namespace

status extract_upload(const fs::path& archive, const fs::path& staging, const upload_limits& limits,
                      upload_summary* summary) {
  upload_summary local;
  upload_summary* sum = summary ? summary : &local;
  *sum = upload_summary{};
  if (::mkdir(staging.c_str(), 0700) != 0) {
    int e = errno;
    if (e == EEXIST) return status::invalid_argument(fmt::format("the staging folder {} exists already", staging.string()));
    return disk_error("mkdir", staging.string(), e);
  }
  status s;
  {
    fd_guard root(::open(staging.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct archive* a = nullptr;
    gunzip_reader gunzip;  // outlives `a`
    if (root.fd < 0) s = disk_error("open", staging.string(), errno);
    if (s) s = open_archive(archive, limits, &gunzip, &a);
    if (s) {
      s = extractor(a, root.fd, limits, sum).run();
      archive_read_free(a);
      if (s) s = gunzip.finish();
    }
  }
  if (!s) fsutil::force_remove(staging);
  return s;
}

bool is_limit_refusal(const status& s) {
  return s.which() == status::code::invalid_argument && s.message().rfind(kLimitPrefix, 0) == 0;
}

}  // namespace berth
