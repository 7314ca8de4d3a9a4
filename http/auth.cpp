#include "http/auth.hpp"

#include <cctype>

#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "http/reply.hpp"
#include "http/session.hpp"
#include "http/web_assets.hpp"

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

bool is_open_request(const httplib::Request& req, bool metrics_public) {
  if (is_open_path(req.path, metrics_public)) return true;
  // Signing in, and the dashboard's own files (they hold nothing secret).
  if (req.method == "POST" && req.path == "/api/session") return true;
  return (req.method == "GET" || req.method == "HEAD") && find_web_asset(req.path) != nullptr;
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
                "is the one given to berth by --token/BERTH_TOKEN, else the one in <data>/token), "
                "or the dashboard's session cookie";
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

namespace {

// No Authorization header: a dashboard session cookie may stand in for the token; then every
// method but GET/HEAD must also carry the session's CSRF token, which a cross-site form cannot.
bool authorize_session(const httplib::Request& req, httplib::Response& res, const std::string& token) {
  auto value = cookie_value(req.get_header_value("Cookie"), session_cookie);
  if (value.empty()) {
    reply_unauthorized(res, auth_outcome::missing);
    return false;
  }
  auto s = verify_session(value, token, unix_now());
  if (!s) {
    reply_error(res, 401, "unauthorized", "the dashboard session has expired or is not valid: sign in again");
    res.set_header("WWW-Authenticate", "Bearer realm=\"berth\", error=\"invalid_token\"");
    return false;
  }
  if (req.method == "GET" || req.method == "HEAD") return true;
  if (req.get_header_value_count("X-CSRF-Token") == 1 &&
      tokens_equal(req.get_header_value("X-CSRF-Token"), csrf_token(*s, token)))
    return true;
  reply_error(res, 403, "csrf",
              "a request with the session cookie must send the session's X-CSRF-Token header "
              "(from POST or GET /api/session)");
  return false;
}

}  // namespace

bool authorize(const httplib::Request& req, httplib::Response& res, const std::string& token, bool metrics_public) {
  if (is_open_request(req, metrics_public)) return true;
  if (req.get_header_value_count("Authorization") == 0) return authorize_session(req, res, token);
  auto outcome = check_authorization(req, token);
  if (outcome == auth_outcome::ok) return true;
  reply_unauthorized(res, outcome);
  return false;
}

}  // namespace berth::http
