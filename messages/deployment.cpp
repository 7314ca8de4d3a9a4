#include "messages/deployment.hpp"

#include <algorithm>

namespace berth {

using json = nlohmann::json;


namespace {

constexpr const char* phase_names[] = {"queued",   "preparing",       "building",  "packaging",
                                       "starting", "health_checking", "canary", "switching", "draining",
                                       "completed", "unchanged",      "rolling_back", "failed",
                                       "cancelled"};
constexpr int phase_progress[] = {0, 5, 15, 45, 55, 65, 72, 80, 92, 100, 100, 95, 100, 100};
static_assert(std::size(phase_names) == std::size(phase_progress), "a name and a progress per phase");
static_assert(std::size(phase_names) == static_cast<size_t>(phase::cancelled) + 1, "a name per phase");
constexpr const char* event_prefix = "deployment_";

json parse_object(const std::string& text) { return payload_object(text); }

void end_running_span(deployment_record& d, int64_t ts) {
  if (!d.phases.empty() && d.phases.back().ended_us == 0) d.phases.back().ended_us = ts;
}

void fold_deployment(production_record& s, phase p, const json& data, const event_record& e) {
  if (p == phase::queued) {  // its id is made of the project and this event's seq
    deployment_record d;
    d.project = e.stream.substr(e.stream.find('/') + 1);
    d.queued_seq = e.seq;
    d.id = deployment_id(d.project, e.seq);
    auto id = d.id;
    d.kind = data.value("kind", "") == "rollback" ? job_kind::rollback : job_kind::deploy;
    d.force = data.value("force", false);
    d.target = data.value("target", "");
    d.created_us = e.ts_us;
    d.message = data.value("message", "");
    d.phases.push_back({phase::queued, e.ts_us, 0});
    if (s.deployments.count(id) == 0) s.order.push_back(id);
    s.deployments[id] = std::move(d);
    return;
  }
  auto it = s.deployments.find(data.value("id", ""));
  if (it == s.deployments.end() || is_terminal(it->second.current)) return;  // an end is final
  auto& d = it->second;
  end_running_span(d, e.ts_us);
  d.current = p;
  d.progress = data.value("progress", progress_of(p));
  d.message = data.value("message", "");
  if (data.contains("resources") && data["resources"].is_object())
    for (auto& [k, v] : data["resources"].items()) d.resources[k] = v;
  if (p == phase::failed || p == phase::cancelled) {
    auto err = data.value("error", json::object());
    d.has_error = true;
    d.error = {err.value("phase", ""), err.value("message", ""), err.value("code", "")};
  }
  if (is_terminal(p)) {
    d.finished_us = e.ts_us;
    d.phases.push_back({p, e.ts_us, e.ts_us});
  } else {
    d.phases.push_back({p, e.ts_us, 0});
  }
}

release_record& release_of(production_record& s, const std::string& hash) {
  auto& r = s.releases[hash];
  r.hash = hash;
  return r;
}

}  // namespace

const char* to_string(phase p) { return phase_names[static_cast<size_t>(p)]; }

json to_json(const side_figures& f) {
  return {{"requests", f.requests}, {"errors", f.errors}, {"error_rate", f.error_rate()},
          {"p50_ms", f.p50_ms},     {"p99_ms", f.p99_ms}};
}

json to_json(const canary_status& c) {
  return {{"step", c.step},
          {"steps", c.steps},
          {"percent", c.percent},
          {"step_started_us", c.step_started_us},
          {"step_ends_us", c.step_ends_us},
          {"candidate", to_json(c.candidate)},
          {"serving", to_json(c.serving)},
          {"verdict", c.verdict},
          {"reason", c.reason}};
}

bool parse_phase(const std::string& s, phase& out) {
  for (size_t i = 0; i < std::size(phase_names); ++i)
    if (s == phase_names[i]) {
      out = static_cast<phase>(i);
      return true;
    }
  return false;
}

bool is_terminal(phase p) {
  return p == phase::completed || p == phase::unchanged || p == phase::failed || p == phase::cancelled;
}

int progress_of(phase p) { return phase_progress[static_cast<size_t>(p)]; }

std::string event_type(phase p) { return std::string(event_prefix) + to_string(p); }

bool phase_of_event(const std::string& type, phase& out) {
  if (type.rfind(event_prefix, 0) != 0) return false;
  return parse_phase(type.substr(std::char_traits<char>::length(event_prefix)), out);
}

std::string deployment_id(const std::string& project, uint64_t queued_seq) {
  return project + "." + std::to_string(queued_seq);
}

bool split_deployment_id(const std::string& id, std::string& project, uint64_t& seq) {
  auto dot = id.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 >= id.size() || dot + 1 + 19 < id.size())
    return false;
  auto digits = id.substr(dot + 1);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  if (digits.size() > 1 && digits[0] == '0') return false;
  project = id.substr(0, dot);
  seq = std::stoull(digits);
  return seq > 0;
}

const char* to_string(job_kind k) { return k == job_kind::rollback ? "rollback" : "deploy"; }

std::string deployment_record::status() const {
  switch (current) {
    case phase::queued: return "queued";
    case phase::completed: return "completed";
    case phase::unchanged: return "unchanged";
    case phase::failed: return "failed";
    case phase::cancelled: return "cancelled";
    default: return "running";
  }
}

namespace {

bool is_production_event(const std::string& type) {
  phase p;
  return phase_of_event(type, p) || type == ev::deployment_cancel_requested || type == ev::canary_step ||
         type == ev::canary_verdict_requested || type == ev::release_packaged ||
         type == ev::release_activated || type == ev::release_pruned || type == ev::release_removed ||
         type == ev::production_started || type == ev::production_stopped || type == ev::production_exited ||
         type == ev::production_crashed;
}

void fold_release(production_record& s, const json& data, const event_record& e) {
  auto hash = data.value("hash", "");
  if (e.type == ev::release_packaged) {
    auto& r = release_of(s, hash);
    if (r.created_us == 0) {
      r.created_us = e.ts_us;
      r.deployment = data.value("deployment", "");
    }
    r.last_used_us = e.ts_us;
  } else if (e.type == ev::release_activated) {
    auto previous = s.current;
    auto& r = release_of(s, hash);
    if (r.created_us == 0) r.created_us = e.ts_us;
    r.last_used_us = e.ts_us;
    ++r.activations;
    bool rollback = data.value("kind", "") == "rollback";
    (rollback ? r.rolled_back_to_us : r.deployed_us) = e.ts_us;
    if (rollback && !previous.empty() && previous != hash && s.releases.count(previous))
      s.releases[previous].rolled_back_from_us = e.ts_us;
    s.current = hash;
    s.status = "running";
    s.process = instance_from(data);
    s.reason.clear();
    s.exits_us.clear();  // a new release: a fresh crash-loop budget
    if (auto d = s.deployments.find(data.value("deployment", "")); d != s.deployments.end()) d->second.activated = true;
  } else {  // release_pruned / release_removed
    s.releases.erase(hash);
  }
}

void fold_process(production_record& s, const json& data, const event_record& e) {
  if (e.type == ev::production_started) {
    s.status = "running";
    s.process = instance_from(data);
    s.reason.clear();
    if (fresh_budget(data)) s.exits_us.clear();
    return;
  }
  s.status = e.type == ev::production_stopped ? "stopped" : e.type == ev::production_exited ? "exited" : "crashed";
  s.process = {};
  s.reason = data.value("reason", "");
  if (e.type == ev::production_exited) note_exit(s.exits_us, e.ts_us);
  if (e.type == ev::production_stopped) s.exits_us.clear();
}

}  // namespace

void fold(production_record& s, const event_record& e) {
  if (!is_production_event(e.type)) return;
  s.last_seq = e.seq;
  ++s.events;
  auto data = parse_object(e.data);
  phase p;
  if (phase_of_event(e.type, p)) return fold_deployment(s, p, data, e);
  if (e.type == ev::deployment_cancel_requested) {
    auto it = s.deployments.find(data.value("id", ""));
    if (it != s.deployments.end() && !is_terminal(it->second.current)) it->second.cancel_requested = true;
  } else if (e.type == ev::canary_step) {  // the last verdict; every one stays in the log
    auto it = s.deployments.find(data.value("id", ""));
    if (it != s.deployments.end() && !is_terminal(it->second.current)) {
      data.erase("id");
      it->second.resources["canary"] = std::move(data);
    }
  } else if (e.type == ev::canary_verdict_requested) {
    auto it = s.deployments.find(data.value("id", ""));
    if (it != s.deployments.end() && !is_terminal(it->second.current))
      it->second.resources["canary_requested"] = data.value("verdict", "");
  } else if (e.type.rfind("release_", 0) == 0) {
    fold_release(s, data, e);
  } else {
    fold_process(s, data, e);
  }
}

std::vector<std::string> releases_to_prune(const production_record& s, int keep,
                                           const std::vector<std::string>& in_use) {
  std::vector<const release_record*> ranked;
  for (auto& [hash, r] : s.releases) ranked.push_back(&r);
  std::sort(ranked.begin(), ranked.end(), [](auto* a, auto* b) {
    return a->last_used_us != b->last_used_us ? a->last_used_us > b->last_used_us : a->hash < b->hash;
  });
  std::vector<std::string> out;
  for (size_t i = 0; i < ranked.size(); ++i) {
    auto& h = ranked[i]->hash;
    bool used = h == s.current || std::find(in_use.begin(), in_use.end(), h) != in_use.end();
    if (i >= static_cast<size_t>(std::max(keep, 0)) && !used) out.push_back(h);
  }
  return out;
}

std::string previous_release(const production_record& s) {
  const release_record* best = nullptr;
  for (auto& [hash, r] : s.releases) {
    if (hash == s.current || r.activations == 0) continue;
    auto active_at = std::max(r.deployed_us, r.rolled_back_to_us);
    if (!best || active_at > std::max(best->deployed_us, best->rolled_back_to_us)) best = &r;
  }
  return best ? best->hash : "";
}

std::vector<std::string> queued_ids(const production_record& s) {
  std::vector<std::string> out;
  for (auto& id : s.order) {
    auto it = s.deployments.find(id);
    if (it != s.deployments.end() && it->second.current == phase::queued) out.push_back(id);
  }
  return out;
}

std::string deployment_queued_data(const deployment_job& job) {
  json j{{"kind", to_string(job.kind)}, {"force", job.force}};
  if (!job.target.empty()) j["target"] = job.target;
  return dump_json(j);
}

std::string phase_event_data(const std::string& id, const std::string& message,
                             const json& resources, const deployment_error* error) {
  json j{{"id", id}, {"message", message}};
  if (!resources.empty()) j["resources"] = resources;
  if (error) j["error"] = {{"phase", error->phase}, {"message", error->message}, {"code", error->code}};
  return dump_json(j);
}

}  // namespace berth
