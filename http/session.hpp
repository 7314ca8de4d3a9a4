// Dashboard sessions without server state: the cookie carries a session id and an expiry,
// signed with HMAC-SHA256 keyed by the API token, so any berth holding the token can check it
// and changing the token signs every session out. The CSRF token is derived the same way.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace berth::http {

inline constexpr const char* session_cookie = "berth_session";
inline constexpr int64_t session_lifetime_s = 12 * 3600;

struct session {
  std::string id;       // 32 hex chars, random
  int64_t expires = 0;  // unix seconds
};

// A fresh session (random id) that expires `session_lifetime_s` after `now`.
session new_session(int64_t now);
// The cookie value "<id>.<expires>.<hmac>" for `s`, signed with `token`.
std::string sign_session(const session& s, const std::string& token);
// The session in a cookie value when its signature matches `token` (constant-time) and it has
// not expired at `now`; nothing otherwise.
std::optional<session> verify_session(const std::string& value, const std::string& token, int64_t now);
// The CSRF token of a session: HMAC(token, "csrf:" + id), hex (compare it in constant time).
std::string csrf_token(const session& s, const std::string& token);
// The value of cookie `name` in a Cookie header ("a=1; b=2"); "" when absent.
std::string cookie_value(const std::string& header, const std::string& name);

int64_t unix_now();

}  // namespace berth::http
