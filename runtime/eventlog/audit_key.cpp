#include "runtime/eventlog/audit_key.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "runtime/eventlog/event_log.hpp"
#include "runtime/files/fs_util.hpp"
#include "runtime/files/private_dir.hpp"

namespace berth {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxKeyFile = 16 * 1024;

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* k) { return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free); }

std::string to_hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 15]);
  }
  return out;
}

bool from_hex(const std::string& hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

std::string pem_of_private(EVP_PKEY* k) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr) != 1) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

status parse_private(const std::string& pem, const std::string& path, std::shared_ptr<EVP_PKEY>* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  EVP_PKEY* k = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (k == nullptr || EVP_PKEY_id(k) != EVP_PKEY_ED25519) {
    if (k) EVP_PKEY_free(k);
    return status::invalid_argument("the audit key file " + path + " holds no Ed25519 private key (PEM)");
  }
  *key = own(k);
  return status::ok();
}

// The key file, checked like the token file (runtime/files/private_dir.hpp). not_found when missing.
status read_key_file(const std::string& path, std::string* content) {
  auto s = read_private_file(path, "the audit key file", kMaxKeyFile,
                             "Whoever read it can sign a forged log: make a new key (delete the file) unless you "
                             "are sure nobody did, then chmod 600 " + path,
                             content);
  if (s.which() == status::code::not_found) return status::not_found("no audit key file at " + path);
  return s;
}

// Writes `pem` as `path` only if nothing is there yet (temp file + link). *raced = true when
// another process made the file first (its key is then the one to use).
status create_key_file(const std::string& path, const std::string& pem, bool* raced) {
  *raced = false;
  auto tmp = path + ".tmp-" + fsutil::random_suffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return status::io_error("cannot create " + tmp + ": " + fsutil::errstr(errno));
  bool ok = ::fchmod(fd, 0600) == 0 &&
            ::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size()) && ::fsync(fd) == 0;
  int e = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return status::io_error("cannot write " + tmp + ": " + fsutil::errstr(e));
  }
  int rc = ::link(tmp.c_str(), path.c_str());
  e = errno;
  ::unlink(tmp.c_str());
  if (rc != 0) {
    if (e == EEXIST) {
      *raced = true;
      return status::ok();
    }
    return status::io_error("cannot create the audit key file " + path + ": " + fsutil::errstr(e));
  }
  int dir = ::open(fs::path(path).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return status::ok();
}

}  // namespace

std::string default_audit_key_path() {
  if (::geteuid() == 0) return "/etc/berth/audit.key";
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg && *xdg == '/') return std::string(xdg) + "/berth/audit.key";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.config/berth/audit.key";
}

status audit_key::load_private(const std::string& path, audit_key* out) {
  std::string pem;
  if (auto s = read_key_file(path, &pem); !s) return s;
  std::shared_ptr<EVP_PKEY> k;
  if (auto s = parse_private(pem, path, &k); !s) return s;
  out->pkey_ = std::move(k);
  out->has_private_ = true;
  return status::ok();
}

status audit_key::load_or_create(const std::string& path, audit_key* out, bool* created) {
  if (created) *created = false;
  auto dir = fs::path(path).parent_path().string();
  if (dir.empty()) return status::invalid_argument("the audit key path " + path + " needs a folder");
  if (auto s = secure_private_dir(dir); !s)
    return s.which() == status::code::invalid_argument ? status::invalid_argument("audit key folder: " + s.message())
                                                       : status::io_error("audit key folder: " + s.message());
  auto s = load_private(path, out);
  if (s.which() != status::code::not_found) return s;
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr),
                                                                  EVP_PKEY_CTX_free);
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1)
    return status::io_error("cannot generate an Ed25519 key (OpenSSL)");
  auto key = own(raw);
  auto pem = pem_of_private(key.get());
  if (pem.empty()) return status::io_error("cannot encode the audit key (OpenSSL)");
  bool raced = false;
  if (auto w = create_key_file(path, pem, &raced); !w) return w;
  if (raced) return load_private(path, out);
  out->pkey_ = std::move(key);
  out->has_private_ = true;
  if (created) *created = true;
  return status::ok();
}

status audit_key::parse_public(const std::string& pem, audit_key* out) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  EVP_PKEY* k = bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  bool priv = false;
  if (k == nullptr) {
    std::unique_ptr<BIO, decltype(&BIO_free)> again(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    k = again ? PEM_read_bio_PrivateKey(again.get(), nullptr, nullptr, nullptr) : nullptr;
    priv = k != nullptr;
  }
  if (k == nullptr || EVP_PKEY_id(k) != EVP_PKEY_ED25519) {
    if (k) EVP_PKEY_free(k);
    return status::invalid_argument("not an Ed25519 key in PEM form");
  }
  out->pkey_ = own(k);
  out->has_private_ = priv;
  return status::ok();
}

status audit_key::from_public_hex(const std::string& hex, audit_key* out) {
  std::string raw;
  if (hex.size() != 64 || !from_hex(hex, &raw)) return status::invalid_argument("a public key is 64 hex chars");
  EVP_PKEY* k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                            reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  if (k == nullptr) return status::invalid_argument("not an Ed25519 public key");
  out->pkey_ = own(k);
  out->has_private_ = false;
  return status::ok();
}

std::string audit_key::public_hex() const {
  if (!pkey_) return "";
  unsigned char raw[32];
  size_t n = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(pkey_.get(), raw, &n) != 1) return "";
  return to_hex(raw, n);
}

std::string audit_key::key_id() const {
  std::string raw;
  if (!from_hex(public_hex(), &raw)) return "";
  return sha256_hex(raw).substr(0, 16);
}

std::string audit_key::public_pem() const {
  if (!pkey_) return "";
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey_.get()) != 1) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

status audit_key::sign(const std::string& message, std::string* signature_hex) const {
  if (!can_sign()) return status::invalid_argument("no private audit key to sign with");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char sig[64];
  size_t n = sizeof sig;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &n, reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1)
    return status::io_error("Ed25519 signing failed (OpenSSL)");
  *signature_hex = to_hex(sig, n);
  return status::ok();
}

bool audit_key::verify(const std::string& message, const std::string& signature_hex) const {
  std::string sig;
  if (!pkey_ || signature_hex.size() != 128 || !from_hex(signature_hex, &sig)) return false;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey_.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
}

}  // namespace berth
