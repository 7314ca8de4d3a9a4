#include "runtime/workspace/gunzip_reader.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "runtime/files/fs_util.hpp"

namespace berth::upload_detail {

namespace {
constexpr size_t kChunk = 1 << 16;
constexpr int kGzipOnly = 16 + MAX_WBITS;  // gzip wrapper (header, CRC-32, length), not zlib or raw
}  // namespace

gunzip_reader::~gunzip_reader() {
  if (zinit_) ::inflateEnd(&z_);
  if (fd_ >= 0) ::close(fd_);
}

status gunzip_reader::open(struct archive* a, const std::filesystem::path& path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) return status::io_error(fmt::format("open {}: {}", path.string(), fsutil::errstr(errno)));
  in_.resize(kChunk);
  out_.resize(kChunk);
  if (!fill()) return status::io_error(fmt::format("read {}: {}", path.string(), fsutil::errstr(errno)));
  if (z_.avail_in < 2 || in_[0] != 0x1f || in_[1] != 0x8b)
    return status::corruption("not a readable tar.gz: the body is not gzip");
  if (::inflateInit2(&z_, kGzipOnly) != Z_OK) return status::io_error("zlib: inflateInit2 failed");
  zinit_ = true;
  if (archive_read_open(a, this, nullptr, &gunzip_reader::read_cb, nullptr) != ARCHIVE_OK) {
    const char* why = archive_error_string(a);
    return status::corruption(fmt::format("not a readable tar.gz: {}", why ? why : "cannot open"));
  }
  return status::ok();
}

bool gunzip_reader::fill() {
  for (;;) {
    ssize_t n = ::read(fd_, in_.data(), in_.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    eof_ = n == 0;
    z_.next_in = in_.data();
    z_.avail_in = static_cast<uInt>(n);
    return true;
  }
}

la_ssize_t gunzip_reader::read_cb(struct archive* a, void* self, const void** out) {
  auto* r = static_cast<gunzip_reader*>(self);
  la_ssize_t n = r->next(out);
  if (n < 0) {
    archive_set_error(a, EINVAL, "%s", r->error_.c_str());
    return ARCHIVE_FATAL;
  }
  return n;
}

status gunzip_reader::finish() {
  const void* ignored = nullptr;
  la_ssize_t n;
  while ((n = next(&ignored)) > 0) {
  }
  if (n < 0) return status::corruption("not a readable tar.gz: " + error_);
  return status::ok();
}

la_ssize_t gunzip_reader::next(const void** out) {
  for (;;) {
    if (z_.avail_in == 0 && !eof_ && !fill()) {
      error_ = "reading the upload: " + fsutil::errstr(errno);
      return -1;
    }
    if (member_done_) {
      if (z_.avail_in == 0 && eof_) return 0;  // the whole stream, every trailer checked
      if (z_.avail_in == 0) continue;
      if (z_.next_in[0] != 0x1f) {  // a further gzip member may follow, nothing else
        error_ = "data after the end of the gzip stream";
        return -1;
      }
      ::inflateReset(&z_);
      member_done_ = false;
    }
    if (z_.avail_in == 0 && eof_) {
      error_ = "truncated gzip stream";
      return -1;
    }
    z_.next_out = out_.data();
    z_.avail_out = static_cast<uInt>(out_.size());
    int r = ::inflate(&z_, Z_NO_FLUSH);
    bool stuck = r == Z_BUF_ERROR && z_.avail_in > 0 && z_.avail_out == out_.size();
    if (r == Z_STREAM_END) {
      member_done_ = true;
    } else if ((r != Z_OK && r != Z_BUF_ERROR) || stuck) {
      error_ = fmt::format("damaged gzip stream ({})", z_.msg ? z_.msg : "zlib error");
      return -1;
    }
    size_t made = out_.size() - z_.avail_out;
    if (made > 0) {
      *out = out_.data();
      return static_cast<la_ssize_t>(made);
    }
  }
}

}  // namespace berth::upload_detail
