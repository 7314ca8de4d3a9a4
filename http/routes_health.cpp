#include <httplib.h>

#include "actors/backends.hpp"
#include "actors/names.hpp"
#include "http/render.hpp"
#include "http/reply.hpp"
#include "http/route_util.hpp"
#include "http/server.hpp"
#include "messages/atoms.hpp"
#include "runtime/files/disk_guard.hpp"

namespace berth::http {

namespace {

// Projects parked as broken: degraded (berth and the other projects work), each named.
void add_broken_projects(const context& ctx, nlohmann::json& body) {
  auto broken = ask<std::vector<broken_project>>(ctx.sys, names::whereis(ctx.sys, names::projects),
                                                 std::chrono::milliseconds(2000), broken_atom_v);
  if (!broken || broken->empty()) return;
  auto list = nlohmann::json::array();
  std::string why;
  for (auto& b : *broken) {
    list.push_back({{"name", b.name}, {"reason", b.reason}});
    why += (why.empty() ? "" : ", ") + b.name;
  }
  body["broken_projects"] = std::move(list);
  body["status"] = "degraded";
  why = "broken projects: " + why;
  body["reason"] = body.contains("reason") ? body["reason"].get<std::string>() + "; " + why : why;
}

// A full disk: degraded (reads work, writes answer 507 until space is freed).
void add_disk(nlohmann::json& body) {
  bool full = disk_guard::full();
  body["disk"] = full ? "full" : "ok";
  body["disk_free_bytes"] = disk_guard::free_bytes();
  if (!full) return;
  body["status"] = "degraded";
  std::string why = "disk full: writes are refused until space is freed";
  body["reason"] = body.contains("reason") ? body["reason"].get<std::string>() + "; " + why : why;
}

}  // namespace

void add_health_routes(httplib::Server& svr, const context& ctx) {
  svr.Get("/health", [&ctx](const httplib::Request&, httplib::Response& res) {
    auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx.started);
    nlohmann::json body{{"status", "ok"},
                        {"version", BERTH_VERSION},
                        {"uptime_s", uptime.count()},
                        {"features", {"event_log", "supervision", "projects", "port_leases", "audit"}}};
    body["scheme"] = ctx.cfg.tls_cert.empty() ? "http" : "https";  // how this API is served
    if (ctx.workers) body["http"] = http_load_json(*ctx.workers);   // saturation at a glance
    auto stats = ask<log_stats>(ctx.sys, names::whereis(ctx.sys, names::event_store),
                                std::chrono::milliseconds(2000), stats_atom_v);
    if (stats) {
      body["events"] = stats->last_seq;
      body["commits"] = stats->commits;
    } else {
      body["status"] = "degraded";
      body["events"] = nullptr;
      body["reason"] = "event store unavailable";
    }
    if (ctx.cfg.deploy.proxy) {
      auto proxy = ask<proxy_view>(ctx.sys, names::whereis(ctx.sys, names::proxy), std::chrono::milliseconds(2000),
                                   status_atom_v);
      body["proxy"] = proxy ? to_json(*proxy) : nlohmann::json{{"mode", "proxy"}, {"status", "unavailable"}};
    } else {
      body["proxy"] = {{"mode", "direct"},
                       {"reason", ctx.cfg.proxy.switch_mode == "direct" ? "switch mode direct was asked for"
                                                                         : "neither HAProxy nor Caddy is installed"}};
    }
    // One circuit breaker per runtime backend; any of them open: degraded (deploys fail fast
    // with backend_unavailable), still 200 as berth itself works.
    nlohmann::json breakers_json = nlohmann::json::object();
    std::vector<std::string> open;
    auto snapshots = ask<std::vector<breaker_snapshot>>(ctx.sys, names::whereis(ctx.sys, names::backends),
                                                        std::chrono::milliseconds(2000), status_atom_v);
    for (auto& b : snapshots ? *snapshots : std::vector<breaker_snapshot>{}) {
      breakers_json[b.backend] = to_json(b);
      if (b.state == breaker_state::open) open.push_back(b.backend);
    }
    body["breakers"] = std::move(breakers_json);
    // Resource limits: applied (and how) or not (and why). Not a degradation: berth works.
    body["limits"] = ctx.cfg.limits.unavailable.empty()
                         ? nlohmann::json{{"available", true}, {"mode", ctx.cfg.limits.mode}}
                         : nlohmann::json{{"available", false}, {"reason", ctx.cfg.limits.unavailable}};
    if (!open.empty()) {
      body["status"] = "degraded";
      std::string why;
      for (auto& n : open) why += (why.empty() ? "" : ", ") + n;
      why = "circuit breaker open: " + why;
      body["reason"] = body.contains("reason") ? body["reason"].get<std::string>() + "; " + why : why;
    }
    add_broken_projects(ctx, body);
    add_disk(body);
    reply_json(res, stats ? 200 : 503, body);
  });
}

}  // namespace berth::http
