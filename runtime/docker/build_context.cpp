#include "runtime/docker/build_context.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <vector>

namespace berth {

namespace fs = std::filesystem;

namespace {

struct writer {
  archive* a = archive_write_new();
  ~writer() { archive_write_free(a); }
  status fail(const std::string& what) const {
    return status::io_error(what + ": " + (archive_error_string(a) ? archive_error_string(a) : "tar error"));
  }
};

status add_entry(writer& w, const std::string& name, const struct stat& st, const fs::path& source) {
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
  archive_entry_set_pathname(e.get(), name.c_str());
  archive_entry_set_uid(e.get(), 0);
  archive_entry_set_gid(e.get(), 0);
  archive_entry_set_mtime(e.get(), st.st_mtime, 0);
  mode_t perm = st.st_mode & 07777;
  if (S_ISDIR(st.st_mode)) {
    archive_entry_set_filetype(e.get(), AE_IFDIR);
    archive_entry_set_perm(e.get(), perm | 0555);
  } else if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    auto target = fs::read_symlink(source, ec);
    if (ec) return status::io_error("cannot read the link " + source.string() + ": " + ec.message());
    archive_entry_set_filetype(e.get(), AE_IFLNK);
    archive_entry_set_perm(e.get(), 0777);
    archive_entry_set_symlink(e.get(), target.c_str());
  } else {
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), perm | 0444);
    archive_entry_set_size(e.get(), st.st_size);
  }
  if (archive_write_header(w.a, e.get()) != ARCHIVE_OK) return w.fail("cannot add " + name);
  if (!S_ISREG(st.st_mode)) return status::ok();
  int fd = ::open(source.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return status::io_error("cannot read " + source.string());
  std::vector<char> buf(1 << 16);
  ssize_t n;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0)
    if (archive_write_data(w.a, buf.data(), static_cast<size_t>(n)) < 0) {
      ::close(fd);
      return w.fail("cannot write " + name);
    }
  ::close(fd);
  return n < 0 ? status::io_error("cannot read " + source.string()) : status::ok();
}

}  // namespace

status write_build_context(const fs::path& folder, const std::string& dockerfile, const fs::path& out) {
  struct stat root;
  if (::lstat(folder.c_str(), &root) != 0 || !S_ISDIR(root.st_mode))
    return status::not_found("no release folder " + folder.string());
  writer w;
  archive_write_set_format_pax_restricted(w.a);  // ustar, with pax headers only for long names
  if (archive_write_open_filename(w.a, out.c_str()) != ARCHIVE_OK) return w.fail("cannot create " + out.string());
  std::error_code ec;
  bool has_dockerfile = false;
  fs::recursive_directory_iterator it(folder, fs::directory_options::none, ec), end;
  if (ec) return status::io_error("cannot list " + folder.string() + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return status::io_error("cannot list " + folder.string() + ": " + ec.message());
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0) return status::io_error("cannot stat " + it->path().string());
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) continue;  // sockets, fifos
    auto name = it->path().lexically_relative(folder).generic_string();
    if (name == "Dockerfile") has_dockerfile = true;
    if (auto s = add_entry(w, name, st, it->path()); !s) return s;
  }
  if (!dockerfile.empty() && !has_dockerfile) {
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(e.get(), "Dockerfile");
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(dockerfile.size()));
    archive_entry_set_mtime(e.get(), root.st_mtime, 0);
    if (archive_write_header(w.a, e.get()) != ARCHIVE_OK ||
        archive_write_data(w.a, dockerfile.data(), dockerfile.size()) < 0)
      return w.fail("cannot add the Dockerfile");
  }
  if (archive_write_close(w.a) != ARCHIVE_OK) return w.fail("cannot finish " + out.string());
  return status::ok();
}

std::string folder_tar(const std::string& name, unsigned uid, unsigned gid) {
  std::string buf(16 * 1024, '\0');  // a tar of one header and its end: 10 KiB blocks at most
  size_t used = 0;
  writer w;
  archive_write_set_format_pax_restricted(w.a);
  archive_write_set_bytes_in_last_block(w.a, 1);
  if (archive_write_open_memory(w.a, buf.data(), buf.size(), &used) != ARCHIVE_OK) return "";
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
  archive_entry_set_pathname(e.get(), name.c_str());
  archive_entry_set_filetype(e.get(), AE_IFDIR);
  archive_entry_set_perm(e.get(), 0755);
  archive_entry_set_uid(e.get(), uid);
  archive_entry_set_gid(e.get(), gid);
  if (archive_write_header(w.a, e.get()) != ARCHIVE_OK || archive_write_close(w.a) != ARCHIVE_OK) return "";
  buf.resize(used);
  return buf;
}

fs::path build_context_path(const std::string& data_dir) {
  static std::atomic<unsigned> seq{0};
  auto dir = fs::path(data_dir) / "tmp";
  std::error_code ec;
  fs::create_directories(dir, ec);
  return dir / ("build-context-" + std::to_string(::getpid()) + "-" + std::to_string(seq++) + ".tar");
}

}  // namespace berth
