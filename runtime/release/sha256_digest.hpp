// SHA-256 through OpenSSL's EVP interface, with the release hash's encoding of numbers and
// strings (hash_encoding.hpp): the release hash (artifact_hash.cpp) and the workspace's tree hash.
#pragma once
#include <openssl/evp.h>

#include <string>

#include "runtime/release/hash_encoding.hpp"

namespace berth::release_detail {

class sha256_digest : public hash_encoding<sha256_digest> {
 public:
  sha256_digest() : ctx_(EVP_MD_CTX_new()) {
    ok_ = ctx_ != nullptr && EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1;
  }
  ~sha256_digest() { EVP_MD_CTX_free(ctx_); }
  sha256_digest(const sha256_digest&) = delete;
  sha256_digest& operator=(const sha256_digest&) = delete;

  void bytes(const void* p, size_t n) {
    if (ok_ && n > 0) ok_ = EVP_DigestUpdate(ctx_, p, n) == 1;
  }
  // The 32 raw bytes; "" if OpenSSL failed somewhere. Ends the digest.
  std::string raw() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!ok_ || EVP_DigestFinal_ex(ctx_, md, &n) != 1) return "";
    ok_ = false;
    return std::string(reinterpret_cast<const char*>(md), n);
  }
  // 64 lower-case hex chars; "" if OpenSSL failed somewhere. Ends the digest.
  std::string hex() { return to_hex(raw()); }

  static std::string to_hex(const std::string& raw) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : raw) {
      out += digits[c >> 4];
      out += digits[c & 0xf];
    }
    return out;
  }
  // The bytes of 64 hex chars; "" when `hex` is not that.
  static std::string from_hex(const std::string& hex) {
    if (hex.size() != 64) return "";
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    std::string out;
    for (size_t i = 0; i < hex.size(); i += 2) {
      int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
      if (hi < 0 || lo < 0) return "";
      out += static_cast<char>(hi << 4 | lo);
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
  bool ok_ = false;
};

}  // namespace berth::release_detail
