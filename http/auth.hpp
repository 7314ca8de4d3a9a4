// Bearer-token auth of the control endpoint. Every route needs `Authorization: Bearer
// <token>` (or the dashboard's session cookie, http/session.hpp, plus X-CSRF-Token for
// anything but GET/HEAD) except the open ones (/health, /metrics with --metrics-public, POST
// /api/session, the dashboard's files); the check runs before routing, so an unauthenticated
// request learns nothing else (not even whether a route exists) and its body is never read.
#pragma once
#include <string>

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace berth::http {

// /health, and /metrics when metrics_public: no token needed (exact paths, decoded, without
// the query).
bool is_open_path(const std::string& path, bool metrics_public = false);
// An open path, POST /api/session (signing in), or GET/HEAD of one of the dashboard's files.
bool is_open_request(const httplib::Request& req, bool metrics_public = false);

enum class auth_outcome {
  ok,
  missing,    // no Authorization header
  malformed,  // not "Bearer <token>", or more than one Authorization header
  wrong,      // a bearer token, not ours
};

// Checks the request's Authorization header against `token` (compared in constant time).
auth_outcome check_authorization(const httplib::Request& req, const std::string& token);

// Constant-time comparison that does not leak the length either (SHA-256 of both, then
// CRYPTO_memcmp).
bool tokens_equal(const std::string& a, const std::string& b);

// 401 {"error":{"code":"unauthorized",...}} with WWW-Authenticate: Bearer.
void reply_unauthorized(httplib::Response& res, auth_outcome why);

// The whole check for one request: true when it may go on; otherwise the 401 (or, for a
// session without its CSRF token, 403 `csrf`) is in `res`.
bool authorize(const httplib::Request& req, httplib::Response& res, const std::string& token,
               bool metrics_public = false);

}  // namespace berth::http
