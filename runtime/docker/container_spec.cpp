#include "runtime/docker/container_spec.hpp"

#include <cmath>

namespace berth::docker {

namespace {
const char* kNobody = "65534:65534";
}

std::string container_name(const instance_labels& l) {
  return "berth-" + l.project + "-" + l.env + (l.release.empty() ? "" : "-" + l.release);
}

std::string volume_name(const instance_labels& l, const std::string& name) {
  return "berth-" + l.project + (l.env == "production" ? "" : "-" + l.env) + "-" + name;
}

std::string container_id_of(const std::string& ref_id) {
  std::string p = kIdPrefix;
  return ref_id.rfind(p, 0) == 0 ? ref_id.substr(p.size()) : "";
}

uint16_t inner_port(const instance_spec& spec) { return spec.container.app_port ? spec.container.app_port : spec.port; }

nlohmann::json container_labels(const instance_spec& spec, const std::string& data_dir) {
  return {{"berth.project", spec.labels.project}, {"berth.env", spec.labels.env},
          {"berth.release", spec.labels.release}, {"berth.data_dir", data_dir},
          {"berth.port", std::to_string(spec.port)}, {"berth.log", spec.log.string()},
          {"berth.runtime", "docker"}};
}

nlohmann::json create_body(const instance_spec& spec, const std::string& image, const std::string& image_user,
                           const std::string& data_dir) {
  auto port = std::to_string(inner_port(spec)) + "/tcp";
  auto env = spec.env;
  env["HOST"] = "0.0.0.0";  // docker-proxy connects to the container's own address
  env["PORT"] = std::to_string(inner_port(spec));
  // A container's processes are visible in the host's /proc with the project's BERTH_PROJECT
  // and BERTH_ENV: without a data dir of their own the process driver would take them for its
  // instances (and a restart would stop them as strays). This label is never a data dir.
  env["BERTH_DATA_DIR"] = std::string(kIdPrefix) + data_dir;
  nlohmann::json envs = nlohmann::json::array();
  for (auto& [k, v] : env) envs.push_back(k + "=" + v);

  nlohmann::json host = {
      {"PortBindings", {{port, {{{"HostIp", "127.0.0.1"}, {"HostPort", std::to_string(spec.port)}}}}}},
      {"Privileged", false},
      {"SecurityOpt", {"no-new-privileges"}},
      {"CapDrop", {"ALL"}},
      {"RestartPolicy", {{"Name", "no"}}},  // berth's keeper decides restarts
      {"Init", false},
      // berth keeps the output in its own files; the engine's copy only needs to be small.
      {"LogConfig", {{"Type", "json-file"}, {"Config", {{"max-size", "1m"}, {"max-file", "1"}}}}},
  };
  if (spec.limits.memory_mb > 0) {
    int64_t bytes = int64_t{spec.limits.memory_mb} << 20;
    host["Memory"] = bytes;
    host["MemorySwap"] = bytes;  // no swap beyond the limit
  }
  if (spec.limits.cpu > 0) host["NanoCpus"] = static_cast<int64_t>(std::llround(spec.limits.cpu * 1e9));
  if (spec.limits.pids > 0) host["PidsLimit"] = spec.limits.pids;

  nlohmann::json mounts = nlohmann::json::array();
  for (auto& [name, target] : spec.container.volumes)
    mounts.push_back({{"Type", "volume"}, {"Source", volume_name(spec.labels, name)}, {"Target", target}});
  nlohmann::json body = {{"Image", image},
                         {"Env", envs},
                         {"Labels", container_labels(spec, data_dir)},
                         {"ExposedPorts", {{port, nlohmann::json::object()}}}};
  if (spec.labels.env != "production" && !spec.sandbox.writable.empty()) {
    // The preview: its source, the only host folder a container ever sees, where it is on the host.
    auto src = spec.sandbox.writable.front().string();
    mounts.push_back({{"Type", "bind"}, {"Source", src}, {"Target", src}});
    body["WorkingDir"] = src;
  }
  host["Mounts"] = mounts;
  body["HostConfig"] = host;
  if (!spec.command.empty()) body["Cmd"] = spec.command;
  if (image_user.empty())
    body["User"] = spec.sandbox.id.uid != 0
                       ? std::to_string(spec.sandbox.id.uid) + ":" + std::to_string(spec.sandbox.id.gid)
                       : kNobody;
  return body;
}

instance_status status_of(const nlohmann::json& inspect) {
  instance_status st;
  auto state = inspect.value("State", nlohmann::json::object());
  if (state.value("Running", false) || state.value("Restarting", false)) {
    st.state = instance_state::running;
    return st;
  }
  st.state = instance_state::exited;
  int code = state.value("ExitCode", -1);
  st.oom = state.value("OOMKilled", false);
  if (state.value("Status", "") == "created") return st;  // never ran: code unknown
  if (code > 128 && code < 128 + 65) {
    st.signal = code - 128;
  } else {
    st.exit_code = code;
  }
  return st;
}

instance_ref ref_of(const nlohmann::json& c) {
  instance_ref r;
  r.id = kIdPrefix + c.value("Id", "");
  auto labels = c.contains("Config") ? c["Config"].value("Labels", nlohmann::json::object())
                                     : c.value("Labels", nlohmann::json::object());
  if (!labels.is_object()) labels = nlohmann::json::object();
  r.project = labels.value("berth.project", "");
  try {
    r.port = static_cast<uint16_t>(std::stoi(labels.value("berth.port", "0")));
  } catch (...) {
    r.port = 0;
  }
  if (c.contains("State") && c["State"].is_object()) r.pid = c["State"].value("Pid", 0);
  return r;
}

}  // namespace berth::docker
