#include "http/source_io.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include <fmt/format.h>
#include <httplib.h>

#include "runtime/files/disk_guard.hpp"
#include "runtime/files/fs_util.hpp"
#include "runtime/release/sha256_digest.hpp"

namespace berth::http {

namespace {

constexpr uint64_t guard_every = 8u << 20;  // bytes written between two looks at the free space
constexpr size_t chunk = 256u << 10;

}  // namespace

status receive_body(const httplib::ContentReader& reader, uint64_t declared, const std::filesystem::path& file) {
  if (auto room = disk_guard::room("receiving an upload"); !room) return room;
  if (auto free = disk_guard::free_bytes(); free != 0 && declared > free)
    return status::no_space(fmt::format("the upload ({} bytes) does not fit on the disk holding berth's data "
                                        "({} bytes free); nothing was written",
                                        declared, free));
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return status::io_error("creating " + file.string() + ": " + fsutil::errstr(errno));
  int failed = 0;             // errno of the write that failed
  status guard = status::ok();
  uint64_t got = 0, next_check = guard_every;
  bool complete = reader([&](const char* data, size_t len) {
    if (!fsutil::write_all(fd, data, len)) {
      failed = errno;
      return false;
    }
    got += len;
    if (got >= next_check) {
      next_check = got + guard_every;
      if (guard = disk_guard::room("receiving an upload"); !guard) return false;
    }
    return true;
  });
  if (failed == 0 && complete && got == declared && ::fsync(fd) != 0) failed = errno;
  if (::close(fd) != 0 && failed == 0) failed = errno;
  if (!guard) return guard;
  if (failed == ENOSPC || failed == EDQUOT) {
    disk_guard::note_no_space();
    return status::no_space("writing the upload: the disk is full; nothing was kept");
  }
  if (failed != 0) return status::io_error("writing " + file.string() + ": " + fsutil::errstr(failed));
  if (!complete || got != declared)
    return status::invalid_argument(
        fmt::format("the body ended after {} of the {} bytes its Content-Length announced", got, declared));
  return status::ok();
}

status sha256_of(int fd, uint64_t size, std::string* hex) {
  release_detail::sha256_digest h;
  std::vector<char> buf(chunk);
  for (uint64_t off = 0; off < size;) {
    auto n = ::pread(fd, buf.data(), static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off)),
                     static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return status::io_error("reading the file: " + fsutil::errstr(errno));
    if (n == 0) return status::io_error("the file became shorter while it was read");
    h.bytes(buf.data(), static_cast<size_t>(n));
    off += static_cast<uint64_t>(n);
  }
  *hex = h.hex();
  if (hex->empty()) return status::io_error("sha256: OpenSSL failed");
  return status::ok();
}

void send_file(httplib::Response& res, int fd, uint64_t size) {
  res.status = 200;
  if (size == 0) {  // httplib wants a provider to have something to provide
    ::close(fd);
    res.set_content("", "application/octet-stream");
    return;
  }
  auto buf = std::make_shared<std::vector<char>>(chunk);
  res.set_content_provider(
      static_cast<size_t>(size), "application/octet-stream",
      [fd, buf](size_t offset, size_t length, httplib::DataSink& sink) {
        auto n = ::pread(fd, buf->data(), std::min(length, buf->size()), static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) return true;  // called again for the same offset
        if (n <= 0) return false;                   // shrank under us: the connection is dropped
        return sink.write(buf->data(), static_cast<size_t>(n));
      },
      [fd](bool) { ::close(fd); });
}

}  // namespace berth::http
