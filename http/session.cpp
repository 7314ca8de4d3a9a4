#include "http/session.hpp"

#include <chrono>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace berth::http {

namespace {

std::string hex(const unsigned char* p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

std::string hmac_hex(const std::string& key, const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), md, &n);
  return hex(md, n);
}

// Both are hex HMACs of fixed length: the length says nothing, the bytes are compared in
// constant time.
bool same_mac(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string signed_part(const session& s) { return "session:" + s.id + "." + std::to_string(s.expires); }

}  // namespace

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

session new_session(int64_t now) {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("no randomness for a session id");
  return {hex(raw, sizeof raw), now + session_lifetime_s};
}

std::string sign_session(const session& s, const std::string& token) {
  return s.id + "." + std::to_string(s.expires) + "." + hmac_hex(token, signed_part(s));
}

std::optional<session> verify_session(const std::string& value, const std::string& token, int64_t now) {
  if (token.empty() || value.size() > 256) return std::nullopt;
  auto a = value.find('.');
  auto b = a == std::string::npos ? a : value.find('.', a + 1);
  if (b == std::string::npos) return std::nullopt;
  session s;
  s.id = value.substr(0, a);
  auto expires = value.substr(a + 1, b - a - 1);
  if (s.id.size() != 32 || expires.empty() || expires.size() > 12 ||
      expires.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  s.expires = std::stoll(expires);
  if (!same_mac(value.substr(b + 1), hmac_hex(token, signed_part(s))) || s.expires <= now) return std::nullopt;
  return s;
}

std::string csrf_token(const session& s, const std::string& token) { return hmac_hex(token, "csrf:" + s.id); }

std::string cookie_value(const std::string& header, const std::string& name) {
  size_t pos = 0;
  while (pos < header.size()) {
    auto end = header.find(';', pos);
    if (end == std::string::npos) end = header.size();
    auto b = header.find_first_not_of(' ', pos);
    auto eq = header.find('=', b);
    if (b < end && eq < end && header.compare(b, eq - b, name) == 0 && eq - b == name.size())
      return header.substr(eq + 1, end - eq - 1);
    pos = end + 1;
  }
  return "";
}

}  // namespace berth::http
