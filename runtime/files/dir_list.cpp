#include "runtime/files/dir_list.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "runtime/files/fs_util.hpp"

namespace berth::fsutil {

status list_dir(int dir, const std::filesystem::path& shown, dot_git git, std::vector<std::string>* names) {
  names->clear();
  // A fresh open of "." has its own offset: reading it does not move `dir`'s (dup would share it).
  int list_fd = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (list_fd < 0) return status::io_error(fmt::format("list {}: {}", shown.string(), errstr(errno)));
  DIR* d = ::fdopendir(list_fd);
  if (d == nullptr) {
    int err = errno;
    ::close(list_fd);
    return status::io_error(fmt::format("list {}: {}", shown.string(), errstr(err)));
  }
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != ".." && !(git == dot_git::skip && n == ".git")) names->push_back(std::move(n));
    errno = 0;
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return status::io_error(fmt::format("list {}: {}", shown.string(), errstr(err)));
  return status::ok();
}

}  // namespace berth::fsutil
