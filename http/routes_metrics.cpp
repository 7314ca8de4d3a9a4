// GET /metrics (Prometheus text format 0.0.4) and the measuring of every HTTP answer. The
// registry is berth_metrics (runtime/metrics/); this file only adds what the HTTP layer knows.
#include <array>

#include <httplib.h>

#include "http/connection.hpp"
#include "http/dispatch.hpp"
#include "http/server.hpp"
#include "runtime/metrics/berth_metrics.hpp"

namespace berth::http {

namespace {

// The route's pattern, not the raw path (bounded cardinality): the path with what each of the
// matched route's capture groups took replaced by "{}"; "none" when no route ran (refused
// before routing, e.g. 401, or no route matches).
std::string route_pattern(const httplib::Request& req) {
  if (req.matches.empty()) return "none";
  std::string out;
  size_t at = 0;
  for (size_t i = 1; i < req.matches.size(); ++i) {
    if (!req.matches[i].matched) continue;
    auto pos = static_cast<size_t>(req.matches.position(i));
    if (pos < at) continue;  // nested in a group already replaced
    out += req.path.substr(at, pos - at) + "{}";
    at = pos + static_cast<size_t>(req.matches.length(i));
  }
  return out + req.path.substr(std::min(at, req.path.size()));
}

// The method as a bounded label: what a client sends is not trusted.
std::string method_label(const std::string& m) {
  static const std::array<const char*, 7> known{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
  for (auto* k : known)
    if (m == k) return m;
  return "other";
}

}  // namespace

void add_metrics_routes(httplib::Server& svr, const context& ctx) {
  svr.Get("/metrics", [&ctx](const httplib::Request&, httplib::Response& res) {
    auto& m = *ctx.metrics;
    if (ctx.workers) {
      auto load = ctx.workers->current_load();
      m.http_streams_open.set(static_cast<double>(load.streams));
      m.http_queued.set(static_cast<double>(load.queued));
    }
    res.set_content(m.registry().render(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

void count_request(const context& ctx, const httplib::Request& req, const httplib::Response& res) {
  if (!ctx.metrics) return;
  auto* r = connection_detail::t_request;
  double seconds = 0;
  if (r != nullptr && r->started != connection_detail::clock_type::time_point{})
    seconds = std::chrono::duration<double>(connection_detail::clock_type::now() - r->started).count();
  ctx.metrics->http_request(method_label(req.method), route_pattern(req), res.status, seconds);
}

}  // namespace berth::http
