// Proxy vocabulary: the routes Caddy must serve, and Caddy's own process. Persisted in the
// stream `proxy`; the proxy actor folds it at start and gives Caddy the whole config, so the
// routes live in the log, never only in Caddy.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <nlohmann/json.hpp>

#include "messages/event.hpp"
#include "messages/instance.hpp"
#include "messages/preview.hpp"

namespace berth {

constexpr const char* proxy_stream = "proxy";

namespace ev {
constexpr const char* route_set = "route_set";          // {id, project, host, listen_port, upstream_port}
constexpr const char* route_removed = "route_removed";  // {id}
// {instance, pid, port, http_port, cause, engine, https_port, inner_port, ask_port} (older: admin_port)
constexpr const char* proxy_started = "proxy_started";
constexpr const char* proxy_exited = "proxy_exited";    // {reason}
}  // namespace ev

// A canary's share of a route's requests. Never in the log: the proxy actor holds it in memory
// only, so a restarted berth (or proxy actor) serves every route whole - a canary a crash cut
// off is reverted, never left half-split.
struct traffic_split {
  uint16_t port = 0;    // the candidate, 127.0.0.1:<port>; 0 = no split
  uint8_t percent = 0;  // of the route's requests sent to it (1-99)
  bool sticky = false;  // a client keeps the side it first got (cookie berth_canary)
  bool operator==(const traffic_split& o) const { return port == o.port && percent == o.percent && sticky == o.sticky; }
  bool operator!=(const traffic_split& o) const { return !(*this == o); }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, traffic_split& x) {
  return f(caf::meta::type_name("traffic_split"), x.port, x.percent, x.sticky);
}

// One project environment behind Caddy.
struct proxy_route {
  std::string id;              // "<project>-production" / "<project>-preview"
  std::string project;
  std::string host;            // matched on the shared HTTP listener ("" = none)
  uint16_t listen_port = 0;    // a dedicated listener (the stable production port), 0 = none
  uint16_t upstream_port = 0;  // 127.0.0.1:<port> the release or preview answers on
  std::vector<std::string> domains;  // custom domains (manifest `domains`), matched like host
  traffic_split split;               // a canary's share (not persisted: see traffic_split)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, proxy_route& x) {
  return f(caf::meta::type_name("proxy_route"), x.id, x.project, x.host, x.listen_port, x.upstream_port, x.domains, x.split);
}

struct proxy_record {
  std::map<std::string, proxy_route> routes;  // by id
  instance_ref caddy;                         // Caddy while up (its admin API: a unix socket)
  uint16_t http_port = 0;
  uint16_t https_port = 0, inner_port = 0, ask_port = 0;  // with HTTPS sites (0: never had them)
  std::string engine;                                      // the router that ran: haproxy | caddy
  bool running = false;
  std::string reason;             // why it exited
  std::vector<int64_t> exits_us;  // Caddy's recent deaths: its restart backoff
};

void fold(proxy_record& s, const event_record& e);
nlohmann::json to_json(const proxy_route& r);
proxy_route proxy_route_from(const nlohmann::json& j);

}  // namespace berth
