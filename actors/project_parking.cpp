#include "actors/project_parking.hpp"

#include <algorithm>
#include <chrono>
#include <limits>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/names.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "runtime/logs/logging.hpp"
#include "runtime/resilience/restart_policy.hpp"

namespace berth {

namespace {

constexpr auto store_timeout = std::chrono::seconds(30);
constexpr uint64_t start_failures_for_broken = 2;

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Retries go on for ever; the window only decides how far the delay has grown.
restart_policy parking_policy(const deploy_settings& s) {
  restart_policy p;
  p.base = std::chrono::milliseconds(s.restart_base_ms);
  p.max = std::chrono::milliseconds(s.restart_max_ms);
  p.limit = std::numeric_limits<size_t>::max();
  p.window = std::chrono::seconds(600);
  return p;
}

// Best effort: when the log cannot take it (a full disk), the state still shows it.
void record(projects_self self, const std::string& name, const char* type, nlohmann::json data) {
  std::vector<new_event> events{{project_stream(name), type, data.dump()}};
  self->request(names::whereis(self->system(), names::event_store), store_timeout, append_atom_v, std::move(events))
      .then([](std::vector<event_record>&) {},
            [=](caf::error& err) {
              log_kv(spdlog::level::warn, std::string("project: cannot record ") + type + ": " + to_string(err),
                     project_fields(name));
            });
}

std::string describe(const caf::error& reason) {
  auto v = view(reason);
  return v.message.empty() ? to_string(reason) : v.message;
}

bool parked(projects_self self, const std::string& name, const caf::error& reason) {
  auto& st = self->state;
  auto idx = st.index.find(name);
  if (idx == st.index.end() || idx->second != name_status::live) return false;  // being deleted
  auto policy = parking_policy(st.settings);
  auto& f = st.failures[name];
  auto now = now_us();
  f.exits_us.push_back(now);
  auto from = now - std::chrono::duration_cast<std::chrono::microseconds>(policy.window).count();
  f.exits_us.erase(std::remove_if(f.exits_us.begin(), f.exits_us.end(), [&](int64_t t) { return t < from; }),
                   f.exits_us.end());
  ++f.in_a_row;
  f.reason = describe(reason);
  auto delay = *restart_delay(policy, now, f.exits_us, jitter_rng());
  f.next_retry_us = now + std::chrono::duration_cast<std::chrono::microseconds>(delay).count();
  if (!f.broken && f.in_a_row >= start_failures_for_broken) {
    f.broken = true;
    f.broken_since_us = now;
    log_kv(spdlog::level::err, "project broken (" + f.reason + "); retrying with backoff", project_fields(name));
    record(self, name, ev::project_broken, {{"reason", f.reason}});
  }
  auto fields = project_fields(name);
  fields["in_a_row"] = f.in_a_row;
  fields["next_start_ms"] = delay.count();
  log_kv(spdlog::level::warn, "project actor failed (" + f.reason + ")", fields);
  auto id = ++f.retry_id;
  self->delayed_send(self, delay, retry_project_atom_v, name, id);
  return true;
}

}  // namespace

void park_failing_projects(projects_self self) {
  self->state.sup.on_child_failed(
      [self](const std::string& name, const caf::error& reason) { return parked(self, name, reason); });
}

void project_came_up(projects_self self, const std::string& name) {
  auto it = self->state.failures.find(name);
  if (it == self->state.failures.end()) return;
  auto& f = it->second;
  f.in_a_row = 0;
  if (!f.broken) return;
  f.broken = false;
  log_kv(spdlog::level::info, "project started again after being broken (" + f.reason + ")", project_fields(name));
  record(self, name, ev::project_recovered, {{"was", f.reason}});
}

void retry_parked(projects_self self, const std::string& name, uint64_t retry_id) {
  auto it = self->state.failures.find(name);
  if (it == self->state.failures.end() || it->second.retry_id != retry_id) return;
  auto idx = self->state.index.find(name);
  if (idx != self->state.index.end() && idx->second == name_status::deleting) {
    // A deletion is under way; if it fails the project is still there to retry.
    self->delayed_send(self, std::chrono::seconds(1), retry_project_atom_v, name, retry_id);
    return;
  }
  self->state.sup.restart_child(name);
}

void forget_failures(projects_self self, const std::string& name) { self->state.failures.erase(name); }

bool broken_view(projects_self self, const std::string& name, project_view& out) {
  auto it = self->state.failures.find(name);
  if (it == self->state.failures.end() || !it->second.broken) return false;
  auto& f = it->second;
  out = project_view{};
  out.name = name;
  out.broken_reason = f.reason;
  out.broken_since_us = f.broken_since_us;
  out.next_retry_us = f.next_retry_us;
  out.start_failures = f.in_a_row;
  return true;
}

std::vector<broken_project> broken_projects(projects_self self) {
  std::vector<broken_project> out;
  for (auto& [name, f] : self->state.failures)
    if (f.broken) out.push_back({name, f.reason, f.broken_since_us, f.next_retry_us, f.in_a_row});
  return out;
}

}  // namespace berth
