// Internal to production:<name> (actors/production.cpp and actors/deploy_job.cpp): the pieces
// both the process ownership and the deploy jobs use.
#pragma once
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/production.hpp"
#include "messages/project_state.hpp"

namespace berth::production_detail {

using self_ptr = caf::stateful_actor<production_state>*;
constexpr auto store_timeout = std::chrono::seconds(30);

process_driver& driver();
process_handle handle_of(const preview_launched& p);
nlohmann::json process_json(const release_process& p);
new_event event(self_ptr self, const std::string& type, const nlohmann::json& data);
// Appends, folds into our state, tells the parent, then continues. If the log refuses, the
// actor quits: without the log berth cannot keep its promises.
void append(self_ptr self, std::vector<new_event> events, std::function<void()> then = {});
// The inputs every process start needs (project, manifest, env with secrets, ports, grace).
deploy_plan plan_for(self_ptr self);
// Proxy mode: a blocking function (for workers) that points this project's production route
// (stable port + <name>.<domain_suffix>) at 127.0.0.1:<port> and waits until Caddy serves it.
std::function<status(uint16_t)> route_setter(self_ptr self);
// Waits (off the scheduler) for the production process to end and reports an unexpected exit.
void watch(self_ptr self);

// Releases a spare port lease (behind the proxy, releases run on leased spare ports).
void release_port(self_ptr self, uint16_t port, const std::string& reason);
// Starts `current` (stable port in direct mode; a leased spare port behind the proxy) and
// records production_started, or production_exited with the reason. `done("")` on success.
void start_current(self_ptr self, std::function<void(const std::string& error)> done);

// production_reconcile.cpp
// Start-up: stop strays, tidy production/, re-point the proxy, adopt or restart; then `ready`.
void reconcile_at_start(self_ptr self, std::function<void()> ready);
// The release died (or was found dead): record it, then restart with backoff (or `crashed`).
void release_died(self_ptr self, const std::string& why);
// The periodic pass and the scheduled restart.
void arm_reconciler(self_ptr self);
void on_reconcile_pass(self_ptr self);
void on_restart_due(self_ptr self, uint64_t generation);

// SIGTERM: answers the shutdown request once no job runs (stopping the release if asked).
caf::result<bool> shut_down(self_ptr self, bool stop_apps, uint32_t grace_ms);
void finish_shutdown(self_ptr self);

// deploy_job.cpp
caf::result<std::string> run_job(self_ptr self, deployment_job job, manifest spec, uint16_t port);
void on_phase_timeout(self_ptr self, const std::string& id, size_t step);

}  // namespace berth::production_detail
