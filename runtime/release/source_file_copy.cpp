// Copying one entry of a source tree (see source_file_copy.hpp): moved out of source_copy.cpp
// so the workspace snapshot copies files exactly as the path snapshot does.
#include "runtime/release/source_file_copy.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include <fmt/format.h>
#include "runtime/files/fs_util.hpp"
#include "runtime/process/exec_gate.hpp"

namespace berth::source_detail {

namespace fs = std::filesystem;
using fsutil::errstr;
using fsutil::inside;

int64_t coarse_now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

status changed(const fs::path& shown) {
  return status::io_error(fmt::format(
      "{} changed while the source was copied (it is now a symlink or another kind of file); "
      "snapshot again", shown.string()));
}

fd_guard::~fd_guard() {
  if (fd >= 0) ::close(fd);
}

std::string link_target(const std::string& target, const fs::path& rel_parent, const link_roots& roots) {
  fs::path t(target);
  if (!t.is_absolute()) return target;
  t = t.lexically_normal();
  for (const fs::path* root : {&roots.canonical, &roots.given}) {
    if (root->empty() || !inside(*root, t)) continue;
    fs::path from_root = t.lexically_relative(*root);
    fs::path rel = rel_parent.empty() ? from_root : from_root.lexically_relative(rel_parent);
    std::string out = rel.lexically_normal().string();
    if (!out.empty() && out.size() > 1 && out.back() == '/') out.pop_back();
    return out.empty() ? "." : out;
  }
  return target;
}

status copy_file_at(int from_dir, int to_dir, const char* name, const fs::path& shown_from, const fs::path& shown_to,
                    mode_t mode, file_copy* out, const std::function<void(const char*, size_t)>& feed) {
  *out = file_copy{};
  out->started_ns = coarse_now_ns();
  // O_NONBLOCK: a fifo swapped in meanwhile must not block the open (fstat refuses it below).
  fd_guard in(::openat(from_dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (in.fd < 0) {
    if (errno == ELOOP) return changed(shown_from);
    out->vanished = errno == ENOENT;
    return status::io_error(fmt::format("open {}: {}", shown_from.string(), errstr(errno)));
  }
  struct stat st;
  if (::fstat(in.fd, &st) != 0 || !S_ISREG(st.st_mode)) return changed(shown_from);
  out->before = file_identity::of(st);
  exec_gate_scope writing(exec_gate::kind::write);  // until `copy` is closed (exec_gate.hpp)
  fd_guard copy(::openat(to_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (copy.fd < 0) return status::io_error(fmt::format("create {}: {}", shown_to.string(), errstr(errno)));
  auto read = fsutil::read_chunks(in.fd, shown_from.string(), [&](const char* p, size_t n) {
    if (feed) feed(p, n);
    out->bytes += n;
    if (!fsutil::write_all(copy.fd, p, n))
      return status::io_error(fmt::format("write {}: {}", shown_to.string(), errstr(errno)));
    return status::ok();
  });
  if (!read) return read;
  if (::fchmod(copy.fd, mode) != 0)
    return status::io_error(fmt::format("chmod {}: {}", shown_to.string(), errstr(errno)));
  struct stat after, copied;
  if (::fstat(in.fd, &after) == 0) out->after = file_identity::of(after);
  if (::fstat(copy.fd, &copied) == 0) out->copy = file_identity::of(copied);
  int fd = copy.fd;
  copy.fd = -1;
  if (::close(fd) != 0) return status::io_error(fmt::format("write {}: {}", shown_to.string(), errstr(errno)));
  return status::ok();
}

}  // namespace berth::source_detail
