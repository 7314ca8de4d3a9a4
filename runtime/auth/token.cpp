#include "runtime/auth/token.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include <openssl/rand.h>

#include "runtime/files/fs_util.hpp"
#include "runtime/files/private_dir.hpp"

namespace berth {

namespace {

constexpr size_t max_token_file_bytes = 1024;

bool write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    auto n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

void fsync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::string generate_token() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  // base64url without padding: 32 bytes -> 43 characters.
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : raw) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(alphabet[(acc << (6 - bits)) & 0x3f]);
  OPENSSL_cleanse(raw, sizeof raw);
  return out;
}

bool valid_token(const std::string& token) {
  return token.size() >= 16 && token.size() <= 256 &&
         token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=") ==
             std::string::npos;
}

token_file_status load_token_file(const std::string& path, std::string& token, std::string& error) {
  std::string content;
  auto read = read_private_file(path, "the token file", max_token_file_bytes,
                                "Anyone who could read it may have the token: delete the file so berth creates a "
                                "new token, or, if you are sure nobody else read it, run: chmod 600 " + path,
                                &content);
  if (read.which() == status::code::not_found) return token_file_status::missing;
  if (!read) {
    error = read.message();
    return token_file_status::refused;
  }
  while (!content.empty() && (content.back() == '\n' || content.back() == '\r')) content.pop_back();
  if (content.size() > max_token_file_bytes || !valid_token(content)) {
    error = "the token file " + path +
            " does not hold a valid token (one line of 16-256 characters from A-Z a-z 0-9 - . _ ~ + / =)";
    return token_file_status::refused;
  }
  token = std::move(content);
  return token_file_status::loaded;
}

token_file_status load_or_create_token_file(const std::string& path, std::string& token,
                                            std::string& error) {
  auto status = load_token_file(path, token, error);
  if (status != token_file_status::missing) return status;

  namespace fs = std::filesystem;
  auto dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    error = "cannot create " + dir.string() + ": " + ec.message();
    return token_file_status::refused;
  }
  std::string fresh;
  try {
    fresh = generate_token();
  } catch (const std::exception& e) {
    error = std::string("cannot generate a token: ") + e.what();
    return token_file_status::refused;
  }
  auto tmp = (dir / (".token.tmp-" + fsutil::random_suffix())).string();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = "cannot create " + tmp + ": " + fsutil::errstr(errno);
    return token_file_status::refused;
  }
  // The umask may only narrow 0600, but say it outright.
  bool ok = ::fchmod(fd, 0600) == 0 && write_all(fd, fresh + "\n") && ::fsync(fd) == 0;
  int write_errno = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    error = "cannot write " + tmp + ": " + fsutil::errstr(write_errno);
    return token_file_status::refused;
  }
  // link() creates `path` only if nothing is there: never a partial file, never overwritten.
  int rc = ::link(tmp.c_str(), path.c_str());
  int link_errno = errno;
  ::unlink(tmp.c_str());
  if (rc != 0) {
    if (link_errno == EEXIST) return load_token_file(path, token, error);  // another start won
    error = "cannot create the token file " + path + ": " + fsutil::errstr(link_errno);
    return token_file_status::refused;
  }
  fsync_dir(dir);
  token = std::move(fresh);
  return token_file_status::created;
}

}  // namespace berth
