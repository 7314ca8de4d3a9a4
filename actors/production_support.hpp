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

// deploy_job.cpp
caf::result<std::string> run_job(self_ptr self, deployment_job job, manifest spec, uint16_t port);
void on_phase_timeout(self_ptr self, const std::string& id, size_t step);

}  // namespace berth::production_detail
