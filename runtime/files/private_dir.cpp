#include "runtime/files/private_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "runtime/files/fs_util.hpp"

namespace berth {

std::string octal_mode(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

status secure_private_dir(const std::string& path, private_dir_result* out) {
  private_dir_result r;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return status::io_error("cannot inspect " + path + ": " + fsutil::errstr(errno));
    std::error_code ec;
    auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) return status::io_error("cannot create " + parent.string() + ": " + ec.message());
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
      return status::io_error("cannot create " + path + ": " + fsutil::errstr(errno));
    if (::lstat(path.c_str(), &st) != 0)
      return status::io_error("cannot inspect " + path + ": " + fsutil::errstr(errno));
    r.created = true;
  }
  if (S_ISLNK(st.st_mode))
    return status::invalid_argument(path + " is a symbolic link; berth only uses a real directory there");
  if (!S_ISDIR(st.st_mode)) return status::invalid_argument(path + " exists and is not a directory");
  if (st.st_uid != ::geteuid())
    return status::invalid_argument(path + " belongs to uid " + std::to_string(st.st_uid) +
                                    ", not to the user berth runs as (uid " + std::to_string(::geteuid()) +
                                    "): berth keeps private data there, so it only uses a folder of its own "
                                    "(chown it, or choose another one)");
  r.was = st.st_mode & 07777;
  if ((st.st_mode & 077) != 0 || r.created) {
    // mkdir's mode went through the umask; chmod states it exactly.
    if (::chmod(path.c_str(), 0700) != 0)
      return status::io_error("cannot chmod 0700 " + path + ": " + fsutil::errstr(errno));
    r.tightened = !r.created;
  }
  if (out) *out = r;
  return status::ok();
}

status read_private_file(const std::string& path, const std::string& what, size_t max_bytes,
                         const std::string& if_loose, std::string* content) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) return status::not_found("no such file: " + path);
    if (e == ELOOP) return status::invalid_argument(what + " " + path + " is a symbolic link; berth only uses a regular file");
    return status::io_error("cannot open " + what + " " + path + ": " + fsutil::errstr(e));
  }
  struct stat st {};
  std::string why;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    why = what + " " + path + " is not a regular file";
  else if (st.st_uid != ::geteuid())
    why = what + " " + path + " belongs to uid " + std::to_string(st.st_uid) + ", not to the user berth runs as (uid " +
          std::to_string(::geteuid()) + ")";
  else if ((st.st_mode & 077) != 0)
    why = what + " " + path + " has mode " + octal_mode(st.st_mode) +
          ": it must not be accessible by group or others (0600). " + if_loose;
  if (!why.empty()) {
    ::close(fd);
    return status::invalid_argument(why);
  }
  content->clear();
  char buf[4096];
  for (;;) {
    auto n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return status::io_error("cannot read " + what + " " + path + ": " + fsutil::errstr(e));
    }
    if (n == 0) break;
    content->append(buf, static_cast<size_t>(n));
    if (content->size() > max_bytes) break;
  }
  ::close(fd);
  return status::ok();
}

}  // namespace berth
