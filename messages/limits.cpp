#include "messages/limits.hpp"

namespace berth {

resource_limits default_limits(const std::string& env) {
  if (env == "build") return {2048, 2, 1024};
  return {512, 1, 512};
}

resource_limits effective_limits(const resource_limits& given, const std::string& env) {
  auto d = default_limits(env);
  return {given.memory_mb > 0 ? given.memory_mb : d.memory_mb, given.cpu > 0 ? given.cpu : d.cpu,
          given.pids > 0 ? given.pids : d.pids};
}

nlohmann::json to_json(const resource_limits& l) {
  auto j = nlohmann::json::object();
  if (l.memory_mb > 0) j["memory_mb"] = l.memory_mb;
  if (l.cpu > 0) j["cpu"] = l.cpu;
  if (l.pids > 0) j["pids"] = l.pids;
  return j;
}

nlohmann::json to_json(const usage_view& u) {
  if (!u.known) return nullptr;
  return {{"memory_bytes", u.memory_bytes},
          {"cpu_seconds", u.cpu_seconds},
          {"processes", u.processes},
          {"source", u.from_cgroup ? "cgroup" : "processes"},
          {"limits", u.limits.any() ? to_json(u.limits) : nlohmann::json(nullptr)}};
}

}  // namespace berth
