#include "runtime/docker/swarm_state.hpp"

#include <set>

namespace berth::swarm {

namespace {

using json = nlohmann::json;

std::string str(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

const json& status_of_task(const json& task) {
  static const json none = json::object();
  return task.contains("Status") && task["Status"].is_object() ? task["Status"] : none;
}

uint64_t version_of(const json& task) {
  auto v = task.value("Version", json::object());
  return v.is_object() ? v.value("Index", uint64_t{0}) : 0;
}

// The ended task that says most about how the instance ended: the newest failed one.
const json* last_failed(const std::vector<const json*>& tasks) {
  const json* last = nullptr;
  for (auto* t : tasks) {
    auto state = str(status_of_task(*t), "State");
    if (state != "failed" && state != "rejected") continue;
    if (!last || version_of(*t) > version_of(*last)) last = t;
  }
  return last;
}

release_state ended(const json* task, const std::string& why) {
  release_state r;
  r.status.state = instance_state::exited;
  r.message = why;
  if (!task) return r;
  auto& st = status_of_task(*task);
  auto cs = st.value("ContainerStatus", json::object());
  int code = cs.is_object() ? cs.value("ExitCode", -1) : -1;
  if (code > 128 && code < 128 + 65) r.status.signal = code - 128;
  else r.status.exit_code = code;
  auto err = str(st, "Err");
  if (!err.empty()) r.message += (r.message.empty() ? "" : ": ") + err;
  return r;
}

}  // namespace

bool task_live(const json& task) {
  static const std::set<std::string> on_the_way{"new",      "allocated", "pending", "assigned", "accepted",
                                                "preparing", "ready",     "starting", "running"};
  auto state = str(status_of_task(task), "State");
  if (state == "running") return true;  // still up, even when it is being shut down
  auto desired = str(task, "DesiredState");
  return (desired == "running" || desired == "ready") && on_the_way.count(state);
}

release_state state_of(const json& service, const json& tasks, const instance_key& key) {
  release_state r;
  if (!service.is_object() || key.empty()) return r;  // gone
  std::vector<const json*> ours;
  if (tasks.is_array())
    for (auto& t : tasks)
      if (key_of_task(t) == key) ours.push_back(&t);
  bool live = false, running = false;
  for (auto* t : ours) {
    live = live || task_live(*t);
    running = running || str(status_of_task(*t), "State") == "running";
  }
  auto update = service.value("UpdateStatus", json::object());
  auto update_state = str(update, "State");
  auto update_message = str(update, "Message");
  auto current = key_of_spec(service.value("Spec", json::object()));

  if (current == key) {
    if (update_state == "paused") return ended(last_failed(ours), "its update was paused: " + update_message);
    if (live || ours.empty()) {  // no task yet: the orchestrator is about to make one
      r.status.state = instance_state::running;
      return r;
    }
    return ended(last_failed(ours), "its tasks failed and Swarm stopped restarting them");
  }
  if (running) {  // replaced, but its task is still stopping
    r.status.state = instance_state::running;
    return r;
  }
  // Rolled back because a task of this instance failed: the update status names that task.
  if (update_state.rfind("rollback", 0) == 0)
    for (auto* t : ours)
      if (auto id = str(*t, "ID"); !id.empty() && update_message.find(id) != std::string::npos)
        return ended(last_failed(ours), "the update to it was rolled back: " + update_message);
  r.replaced = !current.empty();
  return r;  // gone
}

}  // namespace berth::swarm
