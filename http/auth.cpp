#include "http/auth.hpp"

#include <cctype>

#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "http/reply.hpp"

namespace berth::http {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }

bool iequals(const std::string& a, const char* b) {
  size_t i = 0;
  for (; i < a.size() && b[i] != '\0'; ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return i == a.size() && b[i] == '\0';
}

}  // namespace

bool is_open_path(const std::string& path, bool metrics_public) {
  return path == "/health" || (metrics_public && path == "/metrics");
}

bool tokens_equal(const std::string& a, const std::string& b) {
  unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), da);
  SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), db);
  return CRYPTO_memcmp(da, db, sizeof da) == 0;
}

auth_outcome check_authorization(const httplib::Request& req, const std::string& token) {
  auto count = req.get_header_value_count("Authorization");
  if (count == 0) return auth_outcome::missing;
  if (count > 1) return auth_outcome::malformed;
  const auto value = req.get_header_value("Authorization");
  size_t b = 0, e = value.size();
  while (b < e && is_space(value[b])) ++b;
  while (e > b && is_space(value[e - 1])) --e;
  size_t sp = b;
  while (sp < e && !is_space(value[sp])) ++sp;
  if (!iequals(value.substr(b, sp - b), "bearer")) return auth_outcome::malformed;
  size_t t = sp;
  while (t < e && is_space(value[t])) ++t;
  auto presented = value.substr(t, e - t);
  if (presented.empty() || presented.find_first_of(" \t") != std::string::npos) return auth_outcome::malformed;
  // An empty configured token never matches (berth does not start without one anyway).
  if (token.empty() || !tokens_equal(presented, token)) return auth_outcome::wrong;
  return auth_outcome::ok;
}

void reply_unauthorized(httplib::Response& res, auth_outcome why) {
  std::string message;
  switch (why) {
    case auth_outcome::missing:
      message = "this route needs a bearer token: send 'Authorization: Bearer <token>' (the token "
                "is the one given to berth by --token/BERTH_TOKEN, else the one in <data>/token)";
      break;
    case auth_outcome::malformed:
      message = "the Authorization header must be exactly one 'Bearer <token>'";
      break;
    default:
      message = "the bearer token is not valid";
      break;
  }
  reply_error(res, 401, "unauthorized", message);
  res.set_header("WWW-Authenticate", why == auth_outcome::missing
                                         ? "Bearer realm=\"berth\""
                                         : "Bearer realm=\"berth\", error=\"invalid_token\"");
}

bool authorize(const httplib::Request& req, httplib::Response& res, const std::string& token, bool metrics_public) {
  if (is_open_path(req.path, metrics_public)) return true;
  auto outcome = check_authorization(req, token);
  if (outcome == auth_outcome::ok) return true;
  reply_unauthorized(res, outcome);
  return false;
}

}  // namespace berth::http
