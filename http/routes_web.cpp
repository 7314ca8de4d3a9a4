// The dashboard (web/*, built into the binary): served at / without a token, since the files
// hold nothing secret; the page signs in through POST /api/session. Strict headers: no inline
// script, nothing from elsewhere, no framing.
#include <httplib.h>

#include <cstring>

#include "http/reply.hpp"
#include "http/server.hpp"
#include "http/web_assets.hpp"

namespace berth::http {

const web_asset* find_web_asset(const std::string& path) {
  const std::string p = path == "/" ? "/index.html" : path;
  for (size_t i = 0; i < web_asset_count; ++i)
    if (p == web_assets[i].path) return &web_assets[i];
  return nullptr;
}

void add_web_routes(httplib::Server& svr, const context&) {
  auto serve = [](const httplib::Request& req, httplib::Response& res) {
    auto* a = find_web_asset(req.path);
    if (!a) return reply_error(res, 404, "not_found", "no such route");
    // The page itself is revalidated at each load so a new berth's page and scripts go
    // together; the files are small.
    res.set_header("Cache-Control", "no-cache");
    res.set_header("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'");
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_content(reinterpret_cast<const char*>(a->data), a->size, a->content_type);
  };
  svr.Get(R"(/|/[A-Za-z0-9_-]+\.[a-z]+)", serve);
}

}  // namespace berth::http
