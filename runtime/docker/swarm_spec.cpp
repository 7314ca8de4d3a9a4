#include "runtime/docker/swarm_spec.hpp"

#include <cmath>

#include "runtime/docker/container_spec.hpp"

namespace berth::swarm {

namespace {

using json = nlohmann::json;
constexpr int64_t kSecond = 1000000000;  // the API's durations are nanoseconds

// Swarm stops a task with SIGTERM, then SIGKILL after this (berth's default stop grace).
constexpr int64_t kStopGrace = 3 * kSecond;
// A start-first update watches each new task this long before it counts as done; a task
// failing in it rolls the service back.
constexpr int64_t kMonitor = 5 * kSecond;

uint16_t port_of_label(const json& labels) {
  if (!labels.is_object() || !labels.contains("berth.port") || !labels["berth.port"].is_string()) return 0;
  try {
    auto v = std::stoul(labels["berth.port"].get<std::string>());
    return v > 0 && v <= 65535 ? static_cast<uint16_t>(v) : 0;
  } catch (...) {
    return 0;
  }
}

instance_key key_of_container_spec(const json& cs) {
  instance_key k;
  if (!cs.is_object()) return k;
  auto labels = cs.value("Labels", json::object());
  if (labels.is_object() && labels.contains("berth.release") && labels["berth.release"].is_string())
    k.release = labels["berth.release"].get<std::string>();
  k.port = port_of_label(labels);
  return k;
}

}  // namespace

std::string service_name(const std::string& project) { return "berth-" + project; }

std::string instance_id(const std::string& service_id, const std::string& release) {
  return std::string(kIdPrefix) + service_id + ":" + release;
}

bool parse_instance_id(const std::string& id, std::string* service_id, std::string* release) {
  std::string p = kIdPrefix;
  if (id.rfind(p, 0) != 0) return false;
  auto rest = id.substr(p.size());
  auto colon = rest.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) return false;
  if (service_id) *service_id = rest.substr(0, colon);
  if (release) *release = rest.substr(colon + 1);
  return true;
}

instance_key key_of(const instance_ref& ref) {
  instance_key k;
  if (parse_instance_id(ref.id, nullptr, &k.release)) k.port = ref.port;
  return k;
}

instance_key key_of_spec(const json& spec) {
  if (!spec.is_object()) return {};
  return key_of_container_spec(spec.value("TaskTemplate", json::object()).value("ContainerSpec", json::object()));
}

instance_key key_of_task(const json& task) {
  if (!task.is_object()) return {};
  return key_of_container_spec(task.value("Spec", json::object()).value("ContainerSpec", json::object()));
}

std::string registry_image(const std::string& registry, const std::string& project, const std::string& release) {
  return registry + "/berth/" + project + ":" + release;
}

std::string task_user(const instance_spec& spec, const std::string& image_user) {
  if (!image_user.empty()) return image_user;
  if (spec.sandbox.id.uid != 0) return std::to_string(spec.sandbox.id.uid) + ":" + std::to_string(spec.sandbox.id.gid);
  return "65534:65534";
}

json service_spec(const instance_spec& spec, const std::string& image, const std::string& image_user,
                  const std::string& data_dir, uint64_t force) {
  auto& l = spec.labels;
  auto inner = docker::inner_port(spec);
  auto env = spec.env;
  env["HOST"] = "0.0.0.0";  // the published port reaches the task's own address
  env["PORT"] = std::to_string(inner);
  json envs = json::array();
  for (auto& [k, v] : env) envs.push_back(k + "=" + v);

  json labels = {{"berth.project", l.project}, {"berth.env", "production"}, {"berth.release", l.release},
                 {"berth.data_dir", data_dir}, {"berth.port", std::to_string(spec.port)},
                 {"berth.runtime", "swarm"}};
  json container = {{"Image", image},
                    {"Labels", labels},
                    {"Env", envs},
                    {"User", task_user(spec, image_user)},
                    {"CapabilityDrop", {"ALL"}},  // API 1.41; no-new-privileges has no service field yet
                    {"Init", false},
                    {"StopGracePeriod", kStopGrace}};
  if (!spec.command.empty()) container["Args"] = spec.command;  // the image's CMD, replaced
  if (!spec.container.healthcheck.empty()) {
    json test = json::array({"CMD"});
    for (auto& a : spec.container.healthcheck) test.push_back(a);
    // Swarm counts a task as started once this passes: start-first keeps the old task till then.
    container["Healthcheck"] = {{"Test", test},
                                {"Interval", kSecond},
                                {"Timeout", 3 * kSecond},
                                {"Retries", 3},
                                {"StartPeriod", 0}};
  }
  json mounts = json::array();
  for (auto& [name, target] : spec.container.volumes)  // the docker runtime's volumes: the same data
    mounts.push_back({{"Type", "volume"},
                      {"Source", docker::volume_name(l, name)},
                      {"Target", target},
                      {"VolumeOptions",
                       {{"Labels", {{"berth.project", l.project}, {"berth.data_dir", data_dir}, {"berth.runtime", "swarm"}}}}}});
  if (!mounts.empty()) container["Mounts"] = mounts;

  json limits = json::object();
  if (spec.limits.memory_mb > 0) limits["MemoryBytes"] = int64_t{spec.limits.memory_mb} << 20;
  if (spec.limits.cpu > 0) limits["NanoCPUs"] = static_cast<int64_t>(std::llround(spec.limits.cpu * 1e9));
  if (spec.limits.pids > 0) limits["Pids"] = spec.limits.pids;

  json task = {{"ContainerSpec", container},
               {"Resources", {{"Limits", limits}}},
               // Swarm restarts a failed task itself, a few times; after that the release reads as
               // exited and berth's keeper decides.
               {"RestartPolicy", {{"Condition", "any"}, {"Delay", kSecond}, {"MaxAttempts", 3}, {"Window", 60 * kSecond}}},
               {"ForceUpdate", force}};
  return {
      {"Name", service_name(l.project)},
      {"Labels", {{"berth.project", l.project}, {"berth.env", "production"}, {"berth.data_dir", data_dir},
                  {"berth.runtime", "swarm"}, {"berth.log", spec.log.string()}}},
      {"TaskTemplate", task},
      {"Mode", {{"Replicated", {{"Replicas", std::max(1, spec.container.replicas)}}}}},
      {"UpdateConfig",
       {{"Parallelism", 1}, {"Order", "start-first"}, {"FailureAction", "rollback"}, {"Monitor", kMonitor},
        {"MaxFailureRatio", 0}}},
      {"RollbackConfig", {{"Parallelism", 1}, {"Order", "start-first"}, {"Monitor", kMonitor}}},
      // The routing mesh needs IPVS: each task publishes on its node's own port instead.
      {"EndpointSpec",
       {{"Mode", "vip"},
        {"Ports", json::array({{{"Protocol", "tcp"}, {"TargetPort", inner}, {"PublishedPort", spec.port},
                                {"PublishMode", "host"}}})}}},
  };
}

}  // namespace berth::swarm
