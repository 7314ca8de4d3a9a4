#include "messages/proxy.hpp"

namespace berth {

using json = nlohmann::json;

json to_json(const proxy_route& r) {
  return {{"id", r.id}, {"project", r.project}, {"host", r.host}, {"listen_port", r.listen_port},
          {"upstream_port", r.upstream_port}, {"domains", r.domains}};
}

proxy_route proxy_route_from(const json& j) {
  proxy_route r;
  r.id = j.value("id", "");
  r.project = j.value("project", "");
  r.host = j.value("host", "");
  r.listen_port = j.value("listen_port", 0);
  r.upstream_port = j.value("upstream_port", 0);
  if (auto d = j.find("domains"); d != j.end() && d->is_array())
    for (auto& x : *d)
      if (x.is_string()) r.domains.push_back(x.get<std::string>());
  return r;
}

void fold(proxy_record& s, const event_record& e) {
  auto data = payload_object(e.data);  // members of the wrong type dropped: a damaged log cannot throw
  if (e.type == ev::route_set) {
    auto r = proxy_route_from(data);
    if (!r.id.empty()) s.routes[r.id] = r;
  } else if (e.type == ev::route_removed) {
    s.routes.erase(data.value("id", ""));
  } else if (e.type == ev::proxy_started) {
    s.caddy = instance_from(data);
    s.http_port = data.value("http_port", 0);
    s.https_port = data.value("https_port", 0);
    s.inner_port = data.value("inner_port", 0);
    s.ask_port = data.value("ask_port", 0);
    s.engine = data.value("engine", "caddy");  // older berths ran Caddy only
    s.running = true;
    s.reason.clear();
    if (fresh_budget(data)) s.exits_us.clear();
  } else if (e.type == ev::proxy_exited) {
    s.running = false;
    s.caddy = {};
    s.reason = data.value("reason", "");
    note_exit(s.exits_us, e.ts_us);
  }
}

}  // namespace berth
