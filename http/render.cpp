#include "http/render.hpp"

#include <algorithm>

namespace berth {

using json = nlohmann::json;

namespace {

json optional_time(int64_t us) { return us ? json(iso8601(us)) : json(nullptr); }
json optional_text(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

json releases_json(std::vector<const release_record*> rs, const std::string& current, const std::string& status) {
  std::sort(rs.begin(), rs.end(), [](auto* a, auto* b) {
    return a->created_us != b->created_us ? a->created_us > b->created_us : a->hash < b->hash;
  });
  json arr = json::array();
  // `active` means serving now: the current release while production runs.
  for (auto* r : rs) {
    bool is_current = r->hash == current;
    arr.push_back(to_json(*r, is_current, is_current && status == "running"));
  }
  return {{"current", optional_text(current)}, {"status", status}, {"releases", arr}};
}

}  // namespace

json to_json(const deployment_record& d) {
  json phases = json::array();
  for (auto& span : d.phases)
    phases.push_back({{"phase", to_string(span.p)},
                      {"started", iso8601(span.started_us)},
                      {"ended", optional_time(span.ended_us)}});
  json j{{"id", d.id},
         {"project", d.project},
         {"kind", to_string(d.kind)},
         {"force", d.force},
         {"status", d.status()},
         {"phase", to_string(d.current)},
         {"progress", d.progress},
         {"message", d.message},
         {"phases", phases},
         {"resources", d.resources},
         {"error", nullptr},
         {"cancel_requested", d.cancel_requested},
         {"created", iso8601(d.created_us)},
         {"finished", optional_time(d.finished_us)},
         {"duration_s", d.finished_us ? json((d.finished_us - d.created_us) / 1e6) : json(nullptr)}};
  if (!d.target.empty()) j["target"] = d.target;
  if (d.has_error)
    j["error"] = {{"phase", d.error.phase}, {"message", d.error.message}, {"code", d.error.code}};
  return j;
}

json to_json(const release_record& r, bool current, bool active) {
  return {{"hash", r.hash},
          {"current", current},
          {"active", active},
          {"created", optional_time(r.created_us)},
          {"deployment", optional_text(r.deployment)},
          {"deployed_at", optional_time(r.deployed_us)},
          {"rolled_back_to_at", optional_time(r.rolled_back_to_us)},
          {"rolled_back_from_at", optional_time(r.rolled_back_from_us)},
          {"activations", r.activations}};
}

json history_json(const production_record& s) {
  std::vector<const release_record*> rs;
  for (auto& [hash, r] : s.releases) rs.push_back(&r);
  return releases_json(std::move(rs), s.current, s.status);
}

json to_json(const history_view& h) {
  std::vector<const release_record*> rs;
  for (auto& r : h.releases) rs.push_back(&r);
  return releases_json(std::move(rs), h.current, h.status);
}

json to_json(const production_view& v) {
  json j{{"env", "production"},
         {"status", v.status},
         {"current", optional_text(v.current)},
         {"port", v.port},
         {"url", v.url},
         {"public_url", v.public_url},
         {"pid", v.status == "running" ? json(v.pid) : json(nullptr)},
         {"releases", v.releases},
         {"queued", v.queued},
         {"running", optional_text(v.running)},
         {"last_seq", v.last_seq},
         {"events", v.events}};
  if (!v.reason.empty()) j["reason"] = v.reason;
  j["usage"] = to_json(v.usage);
  return j;
}

json to_json(const preview_view& v) {
  json j{{"env", "preview"},         {"status", v.status},     {"port", v.port},
         {"url", v.url},             {"public_url", v.public_url}, {"folder", v.folder},
         {"restarts", v.restarts},   {"last_seq", v.last_seq}, {"events", v.events}};
  if (v.status == "running" || v.status == "starting") j["pid"] = v.pid;
  if (!v.reason.empty()) j["reason"] = v.reason;
  j["usage"] = to_json(v.usage);
  return j;
}

json to_json(const deployment_view& v, bool with_log) {
  auto j = to_json(v.record);
  j["position"] = v.position ? json(v.position) : json(nullptr);
  j["url"] = v.url;
  j["public_url"] = v.public_url;
  if (with_log) j["log"] = v.log;
  if (v.canary) j["canary"] = to_json(*v.canary);  // live; the last verdict is resources.canary
  return j;
}

json to_json(const project_view& v) {
  if (!v.broken_reason.empty())  // its stream could not be folded: nothing else is known for sure
    return json{{"name", v.name},
                {"status", "broken"},
                {"reason", v.broken_reason},
                {"broken_since", iso8601(v.broken_since_us)},
                {"next_retry", iso8601(v.next_retry_us)},
                {"start_failures", v.start_failures}};
  json j{{"name", v.name},
         {"manifest", to_json(v.spec)},
         {"ports", {{"production", v.production_port}, {"preview", v.preview_port}}},
         {"created", iso8601(v.created_us)},
         {"updated", iso8601(v.updated_us)},
         {"last_seq", v.last_seq},
         {"events", v.events}};
  j["source"] = {{"kind", v.spec.source_kind()}};
  if (!v.source.hash.empty()) j["source"].update(to_json(v.source));
  if (!v.production_unavailable.empty() && !v.with_environments) j["status"] = v.production_unavailable;
  if (!v.with_environments) return j;
  auto env = [](const json& view, const std::string& unavailable, const char* name) {
    return unavailable.empty() ? view : json{{"env", name}, {"status", unavailable}};
  };
  j["environments"] = {{"production", env(to_json(v.production), v.production_unavailable, "production")},
                       {"preview", env(to_json(v.preview), v.preview_unavailable, "preview")}};
  return j;
}

json to_json(const source_view& v) {
  json j{{"hash", v.hash}, {"files", v.files}, {"bytes", v.bytes}, {"via", v.via}, {"seq", v.seq},
         {"updated_at", iso8601(v.ts_us)}};
  if (!v.path.empty()) j["path"] = v.path;
  return j;
}

json to_json(const proxy_view& v) {
  json j{{"mode", "proxy"},
         {"status", v.status},
         {"engine", v.engine},
         {"http_port", v.http_port},
         {"sites_tls", v.sites_tls},
         {"routes", v.routes},
         {"restarts", v.restarts},
         {"tcp_migrate_req", v.tcp_migrate_req}};
  if (v.https_port != 0) j["https_port"] = v.https_port;
  if (!v.reason.empty()) j["reason"] = v.reason;
  return j;
}

// The project view's fields, then what the environments' folds say and the last event.
json to_json(const project_state& s) {
  auto j = to_json(project_view_of(s, s.last_seq, s.events));
  auto& p = s.production;
  auto production = history_json(p);  // {current, status, releases}
  production["port"] = s.production_port;
  production["reason"] = optional_text(p.reason);
  json last_deployment = nullptr;
  if (!p.order.empty())
    if (auto d = p.deployments.find(p.order.back()); d != p.deployments.end()) last_deployment = to_json(d->second);
  j["preview"] = {{"status", s.preview.status}, {"port", s.preview_port}, {"reason", optional_text(s.preview.reason)}};
  j["production"] = std::move(production);
  j["last_deployment"] = std::move(last_deployment);
  j["last_event"] = {{"seq", s.last_seq}, {"time", s.last_us ? json(iso8601(s.last_us)) : json(nullptr)}};
  return j;
}

json to_json(const state_view& v) {
  auto j = to_json(v.state);
  j["at"] = iso8601(v.at_us);
  j["deleted"] = optional_time(v.deleted_us);
  return j;
}

}  // namespace berth
