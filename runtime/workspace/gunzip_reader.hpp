// Internal to upload_extract.cpp: the gzip layer of an upload, decoded with zlib and handed to
// libarchive as the tar stream. libarchive's own gzip reader (3.6) skips the CRC-32 and length
// trailer unchecked, so a body damaged in a stored (incompressible) block would land silently;
// zlib checks both at the end of every gzip member.
#pragma once
#include <archive.h>
#include <zlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/status.hpp"

namespace berth::upload_detail {

class gunzip_reader {
 public:
  gunzip_reader() = default;
  ~gunzip_reader();
  gunzip_reader(const gunzip_reader&) = delete;
  gunzip_reader& operator=(const gunzip_reader&) = delete;

  // Opens `a` (a reader with its formats set and no filter) on the gzip file `path`, this object
  // feeding it (it must outlive the reads of `a`). corruption when the file does not start as
  // gzip; io_error when it cannot be read. Later a damaged, truncated or trailing-garbage stream
  // makes libarchive's reads fail, with the reason in archive_error_string.
  status open(struct archive* a, const std::filesystem::path& path);
  // After libarchive saw the tar's end (it reads no further): decodes the rest of the stream, so
  // the last trailer is checked and nothing but gzip members follows. corruption otherwise.
  status finish();

 private:
  static la_ssize_t read_cb(struct archive* a, void* self, const void** out);
  // The next decoded bytes (0 at the end of the stream, -1 with error_ set).
  la_ssize_t next(const void** out);
  bool fill();  // more compressed input; false on a read error (errno kept)

  int fd_ = -1;
  bool zinit_ = false, eof_ = false, member_done_ = false;
  z_stream z_{};
  std::vector<unsigned char> in_, out_;
  std::string error_;
};

}  // namespace berth::upload_detail
