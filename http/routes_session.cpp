// Dashboard sign-in: the token is exchanged once for a signed session cookie (http/session.hpp)
// that browsers send by themselves, EventSource included, so the token never sits in a URL
// or in the page's storage. Nothing is kept on the server.
#include <httplib.h>

#include "http/auth.hpp"
#include "http/reply.hpp"
#include "http/route_util.hpp"
#include "http/server.hpp"
#include "http/session.hpp"
#include "messages/event.hpp"

namespace berth::http {

namespace {

using json = nlohmann::json;

std::string cookie(const context& ctx, const std::string& value, int64_t max_age) {
  std::string c = std::string(session_cookie) + "=" + value + "; Max-Age=" + std::to_string(max_age) +
                  "; Path=/; HttpOnly; SameSite=Strict";
  if (!ctx.cfg.tls_cert.empty()) c += "; Secure";
  return c;
}

json session_json(const context& ctx, const session& s) {
  return {{"csrf", csrf_token(s, ctx.cfg.token)}, {"expires", iso8601(s.expires * 1000000)}};
}

}  // namespace

void add_session_routes(httplib::Server& svr, const context& ctx) {
  // Open (auth.cpp): the body's token is the credential.
  svr.Post("/api/session", [&ctx](const httplib::Request& req, httplib::Response& res) {
    json body;
    if (!body_object(req, res, {"token"}, body, false)) return;
    if (!body.contains("token") || !body["token"].is_string())
      return reply_error(res, 400, "invalid_request", "request body must be a JSON object with a string field 'token'");
    if (ctx.cfg.token.empty() || !tokens_equal(body["token"].get<std::string>(), ctx.cfg.token))
      return reply_error(res, 401, "unauthorized", "the token is not valid");
    auto s = new_session(unix_now());
    res.set_header("Set-Cookie", cookie(ctx, sign_session(s, ctx.cfg.token), session_lifetime_s));
    res.set_header("Cache-Control", "no-store");
    reply_json(res, 200, session_json(ctx, s));
  });

  // The CSRF token again (a reloaded page has the cookie but not the token).
  svr.Get("/api/session", [&ctx](const httplib::Request& req, httplib::Response& res) {
    auto s = verify_session(cookie_value(req.get_header_value("Cookie"), session_cookie), ctx.cfg.token, unix_now());
    if (!s) return reply_error(res, 404, "not_found", "no dashboard session: this request used the bearer token");
    res.set_header("Cache-Control", "no-store");
    reply_json(res, 200, session_json(ctx, *s));
  });

  svr.Delete("/api/session", [&ctx](const httplib::Request&, httplib::Response& res) {
    res.set_header("Set-Cookie", cookie(ctx, "", 0));
    reply_json(res, 200, {{"signed_out", true}});
  });
}

}  // namespace berth::http
