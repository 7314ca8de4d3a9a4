// How a release instance is doing, read from its service and the service's tasks (GET
// /services/{id}, GET /tasks?filters={"service":[id]}). Pure functions of that JSON.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/docker/swarm_spec.hpp"
#include "runtime/driver.hpp"

namespace berth::swarm {

struct release_state {
  instance_status status;
  std::string message;  // why it ended, when it did: the update status or the last task's error
  bool replaced = false;  // gone because the service was updated to another instance (no failure)
};

// A task that is running or on its way there (Swarm restarts failed tasks itself).
bool task_live(const nlohmann::json& task);

// The instance `key` of the service (null: the service is gone) with these tasks:
// - running: the service's spec is this instance (and its update is not paused) and a task of it
//   is live; or a task of it still runs (a replaced release whose task has not stopped yet);
// - exited: an update to it failed or rolled back, or its tasks failed and none is live; the
//   last task's exit code when there is one;
// - gone: the service is gone, or runs another instance and nothing of this one is left.
release_state state_of(const nlohmann::json& service, const nlohmann::json& tasks, const instance_key& key);

}  // namespace berth::swarm
