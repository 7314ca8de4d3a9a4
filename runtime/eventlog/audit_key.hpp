// The Ed25519 key that signs the event log's head (OpenSSL EVP), and its file. No actor code.
//
// The key file is a PEM PKCS#8 private key, kept outside the data dir (apps and anyone who can
// write the data dir must not be able to sign): default /etc/berth/audit.key for root,
// $XDG_CONFIG_HOME/berth/audit.key (or ~/.config/berth/audit.key) otherwise. Like ssh with a
// private key, berth refuses a key file that is not a regular file of its own user with mode
// 0600 or narrower; its folder is made 0700 and must belong to berth's user.
#pragma once
#include <memory>
#include <string>

#include "runtime/status.hpp"

typedef struct evp_pkey_st EVP_PKEY;

namespace berth {

// The default key path for the current effective user (see above).
std::string default_audit_key_path();

class audit_key {
 public:
  audit_key() = default;

  // Reads the private key at `path`, or creates it (a new random key, written 0600 through a
  // temp file and link(), so concurrent starts agree on one key) when missing; its folder is
  // created 0700 (tightened to 0700 when wider). *created says which happened.
  // invalid_argument: refused (symlink, other owner, group/other mode bits, not a key);
  // io_error: cannot read or write.
  static status load_or_create(const std::string& path, audit_key* out, bool* created = nullptr);
  // Reads an existing private key file with the same checks; not_found when missing.
  static status load_private(const std::string& path, audit_key* out);
  // Reads a public key: a PEM public key (as `berth audit key` prints), or a PEM private key
  // (its public half). No mode checks (a public key is not secret). invalid_argument when the
  // text is no Ed25519 key.
  static status parse_public(const std::string& pem, audit_key* out);
  // The public key from its raw 32 bytes as 64 hex chars (as checkpoints carry it).
  static status from_public_hex(const std::string& hex, audit_key* out);

  bool valid() const { return static_cast<bool>(pkey_); }
  bool can_sign() const { return valid() && has_private_; }
  std::string public_hex() const;  // raw 32-byte public key, lowercase hex
  std::string key_id() const;      // first 16 hex chars of SHA-256 of the raw public key
  std::string public_pem() const;  // "-----BEGIN PUBLIC KEY-----..."

  // Ed25519 signature of `message` as 128 hex chars. invalid_argument without a private key.
  status sign(const std::string& message, std::string* signature_hex) const;
  // True when `signature_hex` is this key's signature of `message`.
  bool verify(const std::string& message, const std::string& signature_hex) const;

 private:
  std::shared_ptr<EVP_PKEY> pkey_;
  bool has_private_ = false;
};

}  // namespace berth
