#include "tests/common/tar_builder.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace berth::test {

namespace {
struct archive* w(void* a) { return static_cast<struct archive*>(a); }
}  // namespace

tar_builder::tar_builder(const std::filesystem::path& path) {
  a_ = archive_write_new();
  archive_write_add_filter_gzip(w(a_));
  archive_write_set_format_pax_restricted(w(a_));
  // Names are written as the bytes given (UTF-8 in tests), whatever the locale: in the C locale
  // libarchive cannot translate a non-ASCII name to the pax header's UTF-8.
  archive_write_set_format_option(w(a_), nullptr, "hdrcharset", "BINARY");
  if (archive_write_open_filename(w(a_), path.c_str()) != ARCHIVE_OK)
    throw std::runtime_error("tar_builder: " + std::string(archive_error_string(w(a_))));
}

tar_builder::~tar_builder() { close(); }

void tar_builder::close() {
  if (a_ == nullptr) return;
  archive_write_close(w(a_));
  archive_write_free(w(a_));
  a_ = nullptr;
}

void tar_builder::header(const std::string& name, unsigned type, uint32_t mode, uint64_t size, const std::string& link,
                         bool hard, unsigned long rdev) {
  auto* e = archive_entry_new();
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_filetype(e, type);
  archive_entry_set_perm(e, mode);
  archive_entry_set_size(e, static_cast<la_int64_t>(size));
  archive_entry_set_mtime(e, 1700000000, 0);
  if (!link.empty()) {
    if (hard)
      archive_entry_set_hardlink(e, link.c_str());
    else
      archive_entry_set_symlink(e, link.c_str());
  }
  if (rdev != 0) archive_entry_set_rdev(e, rdev);
  if (archive_write_header(w(a_), e) != ARCHIVE_OK) {
    std::string why = archive_error_string(w(a_)) ? archive_error_string(w(a_)) : "?";
    archive_entry_free(e);
    throw std::runtime_error("tar_builder header " + name + ": " + why);
  }
  archive_entry_free(e);
}

tar_builder& tar_builder::file(const std::string& name, const std::string& content, uint32_t mode) {
  header(name, AE_IFREG, mode, content.size());
  if (!content.empty()) archive_write_data(w(a_), content.data(), content.size());
  return *this;
}

tar_builder& tar_builder::dir(const std::string& name, uint32_t mode) {
  header(name, AE_IFDIR, mode, 0);
  return *this;
}

tar_builder& tar_builder::symlink(const std::string& name, const std::string& target) {
  header(name, AE_IFLNK, 0777, 0, target);
  return *this;
}

tar_builder& tar_builder::hardlink(const std::string& name, const std::string& target) {
  header(name, AE_IFREG, 0644, 0, target, true);
  return *this;
}

tar_builder& tar_builder::device(const std::string& name, bool block) {
  header(name, block ? AE_IFBLK : AE_IFCHR, 0666, 0, "", false, makedev(1, 3));
  return *this;
}

tar_builder& tar_builder::fifo(const std::string& name) {
  header(name, AE_IFIFO, 0644, 0);
  return *this;
}

tar_builder& tar_builder::lying_file(const std::string& name, uint64_t declared, const std::string& content) {
  header(name, AE_IFREG, 0644, declared);
  archive_write_data(w(a_), content.data(), content.size());
  return *this;
}

std::string read_file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace berth::test
