// The swarm driver's instance verbs: a release is an update of the project's service.
#include "runtime/docker/swarm_runtime.hpp"

#include <fstream>
#include <thread>

#include "runtime/docker/build_context.hpp"
#include "runtime/docker/images.hpp"
#include "runtime/docker/swarm_driver.hpp"
#include "runtime/process/process_driver.hpp"

namespace berth {

namespace swarm {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kInspectTimeout = 5s;
constexpr auto kPoll = 100ms;
constexpr auto kAfterGrace = 5s;  // Swarm's own stop, and the engine's bookkeeping

std::string label(const json& j, const char* key) {
  auto labels = j.value("Labels", json::object());
  return labels.is_object() && labels.contains(key) && labels[key].is_string() ? labels[key].get<std::string>() : "";
}

std::string filter(const json& f) { return "filters=" + url_encode(f.dump()); }

// The engine refused the request: a 400 is the spec's fault (not retried); a node that is no
// manager the operator's; anything else (a version race, a 5xx) transient.
status refused(const engine_reply& r, const std::string& what) {
  if (r.http == 400) return status::invalid_argument(what + ": " + r.error());
  // "This node is not a swarm manager": no retry fixes that, the operator does.
  if (r.http == 503 && r.error().find("swarm") != std::string::npos)
    return status::invalid_argument(what + ": the engine is not a swarm manager (docker swarm init, or join as a "
                                           "manager): " + r.error());
  return status::io_error(what + ": " + r.error());
}

}  // namespace

// POST of a service spec; with the registry's credentials when the spec has them (the engine's
// call() sends no extra headers: the spec goes as a file body of a one-message stream then).
status swarm_runtime::post_spec(const std::string& path, const json& body, const instance_spec& spec,
                                engine_reply* out) const {
  if (spec.container.registry_auth.empty()) return engine_->call("POST", path, body, out);
  auto file = build_context_path(options_.data_dir);
  struct remove_after {
    std::filesystem::path p;
    ~remove_after() { std::error_code ec; std::filesystem::remove(p, ec); }
  } cleanup{file};
  {
    std::ofstream f(file, std::ios::binary);
    f << body.dump();
    if (!f) return status::io_error("cannot write " + file.string());
  }
  *out = {};
  auto s = engine_->stream_json(
      "POST", path, file, "application/json", {auth_header(spec.container.registry_auth, registry_of(spec))},
      [&](const json& m) {
        out->body = m;
        out->raw = m.dump();
        return false;
      },
      {}, std::chrono::seconds(30), &out->http);
  return s;
}

swarm_runtime::swarm_runtime(std::shared_ptr<docker_engine> engine, container_runtime_options options)
    : engine_(std::move(engine)), options_(std::move(options)) {}

swarm_runtime::~swarm_runtime() {
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    stopping_ = true;
  }
  watch_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  std::map<std::string, pump> pumps;
  {
    std::lock_guard<std::mutex> lock(pump_mu_);
    pumps.swap(pumps_);
  }
  for (auto& [id, p] : pumps) {
    p.stop->store(true);
    if (p.thread.joinable()) p.thread.join();
  }
}

std::string swarm_runtime::registry_of(const instance_spec& spec) const {
  return spec.container.registry.empty() ? options_.registry : spec.container.registry;
}

bool swarm_runtime::ours(const json& service) const {
  return label(service.value("Spec", json::object()), "berth.data_dir") == options_.data_dir;
}

status swarm_runtime::read(const std::string& id_or_name, json* service, json* tasks) const {
  engine_reply r;
  if (auto s = engine_->call("GET", "/services/" + id_or_name, nullptr, &r, kInspectTimeout); !s) return s;
  *service = nullptr;
  if (r.http == 404) return status::ok();
  if (!r.ok()) return status::io_error("reading service " + id_or_name + ": " + r.error());
  if (!ours(r.body)) return status::ok();
  *service = std::move(r.body);
  if (!tasks) return status::ok();
  engine_reply t;
  auto path = "/tasks?" + filter({{"service", {service->value("ID", id_or_name)}}});
  if (auto s = engine_->call("GET", path, nullptr, &t, kInspectTimeout); !s) return s;
  if (!t.ok()) return status::io_error("reading the tasks of " + id_or_name + ": " + t.error());
  *tasks = std::move(t.body);
  return status::ok();
}

release_state swarm_runtime::state(const instance_ref& ref) const {
  std::string service_id;
  if (!parse_instance_id(ref.id, &service_id, nullptr)) return {};
  json service, tasks;
  if (auto s = read(service_id, &service, &tasks); !s) {
    // The engine does not answer: nothing says the release ended (as a process whose state
    // cannot be read is not declared dead).
    release_state r;
    r.status.state = instance_state::running;
    return r;
  }
  try {
    return state_of(service, tasks, key_of(ref));
  } catch (const nlohmann::json::exception&) {  // an answer of another shape: nothing is known
    release_state r;
    r.status.state = instance_state::running;
    return r;
  }
}

status swarm_runtime::start(const instance_spec& spec, instance_ref* out) try {
  auto& l = spec.labels;
  if (l.project.empty() || l.release.empty() || spec.port == 0 || l.env != "production")
    return status::invalid_argument("the swarm runtime runs production releases: project, release and port are needed");
  auto registry = registry_of(spec);
  if (registry.empty()) return status::invalid_argument("the swarm runtime needs a registry");
  // The user the image asks for: the local copy prepare() built (or the registry's, pulled).
  bool exists = false;
  json image;
  for (auto& ref : {release_image(l.project, l.release), registry_image(registry, l.project, l.release)}) {
    if (auto s = image_exists(*engine_, ref, &exists, &image); !s) return s;
    if (exists) break;
  }
  if (!exists) {  // gone from this host (pruned by hand, a restart without prepare): the registry has it
    if (auto s = pull(spec); !s) return s;
    if (auto s = image_exists(*engine_, registry_image(registry, l.project, l.release), &exists, &image); !s) return s;
    if (!exists) return status::not_found("the image of release " + l.release + " is neither here nor in the registry");
  }
  auto image_user = image.value("Config", json::object()).value("User", std::string());

  json service;
  engine_reply r;
  if (auto s = engine_->call("GET", "/services/" + service_name(l.project), nullptr, &r, kInspectTimeout); !s) return s;
  if (r.ok() && !ours(r.body))
    return status::invalid_argument("the service " + service_name(l.project) + " belongs to another berth");
  if (!r.ok() && r.http != 404) return status::io_error("reading service " + service_name(l.project) + ": " + r.error());
  auto image_ref = registry_image(registry, l.project, l.release);
  std::string service_id;
  if (r.http == 404) {
    engine_reply c;
    if (auto s = post_spec("/services/create", service_spec(spec, image_ref, image_user, options_.data_dir), spec, &c); !s)
      return s;
    if (!c.ok()) return refused(c, "creating service " + service_name(l.project));
    service_id = c.body.value("ID", std::string());
  } else {
    service = std::move(r.body);
    service_id = service.value("ID", std::string());
    uint64_t force = service["Spec"].value("TaskTemplate", json::object()).value("ForceUpdate", uint64_t{0});
    auto version = service["Version"].value("Index", uint64_t{0});
    instance_key key{l.release, spec.port};
    if (key_of_spec(service["Spec"]) == key) {
      json now, tasks;
      if (auto s = read(service_id, &now, &tasks); !s) return s;
      if (state_of(now, tasks, key).status.running()) {  // already this instance (a retried start)
        *out = {instance_id(service_id, l.release), spec.port, 0, l.project};
        return status::ok();
      }
      ++force;  // the same spec, but its tasks are down: run them again
      if (!now.is_null()) version = now["Version"].value("Index", uint64_t{0});
    }
    engine_reply u;
    auto path = "/services/" + service_id + "/update?version=" + std::to_string(version);
    if (auto s = post_spec(path, service_spec(spec, image_ref, image_user, options_.data_dir, force), spec, &u); !s)
      return s;
    if (!u.ok()) return refused(u, "updating service " + service_name(l.project));
  }
  if (service_id.empty()) return status::io_error("the engine did not say which service it made");
  if (!spec.log.empty()) pump_logs(service_id, spec.log.string());
  *out = {instance_id(service_id, l.release), spec.port, 0, l.project};
  return status::ok();
} catch (const nlohmann::json::exception& e) {
  return status::io_error(std::string("an unexpected answer from the Docker engine: ") + e.what());
}

status swarm_runtime::remove_service(const std::string& service_id) {
  engine_reply r;
  if (auto s = engine_->call("DELETE", "/services/" + service_id, nullptr, &r); !s) return s;
  if (!r.ok() && r.http != 404) return status::io_error("removing service " + service_id + ": " + r.error());
  stop_pump(service_id);
  return status::ok();
}

status swarm_runtime::stop(const instance_ref& ref, std::chrono::milliseconds grace) try {
  std::string service_id;
  if (!parse_instance_id(ref.id, &service_id, nullptr)) return status::ok();
  auto key = key_of(ref);
  json service;
  if (auto s = read(service_id, &service, nullptr); !s) return s;
  if (service.is_null()) {
    wait_gone(service_id, key, grace);
    return status::ok();
  }
  auto& spec = service["Spec"];
  auto current = key_of_spec(spec);
  auto previous = key_of_spec(service.value("PreviousSpec", json::object()));
  auto version = "?version=" + std::to_string(service["Version"].value("Index", uint64_t{0}));
  engine_reply r;
  if (current == key && !previous.empty() && previous.release != key.release) {
    // A candidate that did not make it: the service goes back to the release it ran before.
    if (auto s = engine_->call("POST", "/services/" + service_id + "/update" + version + "&rollback=previous&registryAuthFrom=previous-spec", spec, &r);
        !s)
      return s;
    if (!r.ok()) return refused(r, "rolling service " + service_id + " back");
  } else if (current == key) {
    // Nothing to go back to (a first deploy, or the previous one was stopped already).
    if (auto s = remove_service(service_id); !s) return s;
  } else if (previous == key) {
    // Replaced already (start-first): the same spec again, so that a later stop of what runs
    // now never rolls back to this one.
    if (auto s = engine_->call("POST", "/services/" + service_id + "/update" + version, spec, &r); !s) return s;
    if (!r.ok()) return refused(r, "updating service " + service_id);
  }
  wait_gone(service_id, key, grace);
  return status::ok();
} catch (const nlohmann::json::exception& e) {
  return status::io_error(std::string("an unexpected answer from the Docker engine: ") + e.what());
}

void swarm_runtime::wait_gone(const std::string& service_id, const instance_key& key,
                              std::chrono::milliseconds grace) const {
  // This node's containers of the instance (the task containers carry the spec's labels).
  auto path = "/containers/json?" + filter({{"label",
                                             {"com.docker.swarm.service.id=" + service_id,
                                              "berth.release=" + key.release,
                                              "berth.port=" + std::to_string(key.port)}}});
  auto kill_at = std::chrono::steady_clock::now() + grace;
  auto until = kill_at + kAfterGrace;
  bool killed = false;
  while (std::chrono::steady_clock::now() < until) {
    engine_reply r;
    if (!engine_->call("GET", path, nullptr, &r, kInspectTimeout) || !r.ok()) return;  // nothing to wait on
    json service, tasks;
    bool elsewhere = read(service_id, &service, &tasks) && state_of(service, tasks, key).status.running();
    if ((!r.body.is_array() || r.body.empty()) && !elsewhere) return;
    if (!killed && std::chrono::steady_clock::now() >= kill_at && r.body.is_array()) {
      for (auto& c : r.body) {
        engine_reply k;
        engine_->call("POST", "/containers/" + c.value("Id", std::string()) + "/kill", nullptr, &k);
      }
      killed = true;
    }
    std::this_thread::sleep_for(kPoll);
  }
}

instance_status swarm_runtime::inspect(const instance_ref& ref) const { return state(ref).status; }

std::vector<instance_ref> swarm_runtime::list(const instance_labels& f) const try {
  std::vector<instance_ref> refs;
  if (!f.env.empty() && f.env != "production") return refs;  // only production runs as services
  json labels = {"berth.data_dir=" + options_.data_dir, "berth.runtime=swarm"};
  if (!f.project.empty()) labels.push_back("berth.project=" + f.project);
  engine_reply r;
  if (!engine_->call("GET", "/services?" + filter({{"label", labels}}), nullptr, &r, kInspectTimeout) || !r.ok() ||
      !r.body.is_array())
    return refs;
  for (auto& s : r.body) {
    auto key = key_of_spec(s.value("Spec", json::object()));
    if (key.empty() || (!f.release.empty() && key.release != f.release)) continue;
    refs.push_back({instance_id(s.value("ID", std::string()), key.release), key.port, 0,
                    label(s.value("Spec", json::object()), "berth.project")});
  }
  return refs;
} catch (const nlohmann::json::exception& e) {
  return {};  // nothing known: nothing listed
}

std::vector<std::string> swarm_runtime::logs(const instance_spec& spec, const instance_ref&, size_t lines) const {
  if (spec.log.empty()) return {};
  return process_driver::tail(spec.log.string(), lines);  // what the service's log pump wrote
}

status swarm_runtime::usage(const instance_ref& ref, resource_usage* out) const try {
  std::string service_id;
  if (!parse_instance_id(ref.id, &service_id, nullptr)) return status::not_found("not a swarm instance");
  auto path = "/containers/json?" + filter({{"label",
                                             {"com.docker.swarm.service.id=" + service_id,
                                              "berth.release=" + key_of(ref).release,
                                              "berth.port=" + std::to_string(ref.port)}}});
  engine_reply r;
  if (auto s = engine_->call("GET", path, nullptr, &r, kInspectTimeout); !s) return s;
  if (!r.ok() || !r.body.is_array() || r.body.empty())
    return status::not_found("no task of " + ref.id + " runs on this node");
  engine_reply st;
  auto id = r.body[0].value("Id", std::string());
  if (auto s = engine_->call("GET", "/containers/" + id + "/stats?stream=0&one-shot=1", nullptr, &st, kInspectTimeout); !s) return s;
  if (!st.ok()) return status::not_found("no stats for " + ref.id + ": " + st.error());
  auto& b = st.body;
  resource_usage u;
  auto cpu = b.value("cpu_stats", json::object()).value("cpu_usage", json::object());
  u.cpu_seconds = cpu.value("total_usage", 0.0) / 1e9;
  auto mem = b.value("memory_stats", json::object());
  u.rss_bytes = mem.value("usage", uint64_t{0});
  u.processes = b.value("pids_stats", json::object()).value("current", uint32_t{0});
  u.from_cgroup = true;
  json service;  // the limits are the spec's (stats say the host's memory when there is none)
  if (read(service_id, &service, nullptr) && service.is_object()) {
    auto limits = service["Spec"].value("TaskTemplate", json::object()).value("Resources", json::object());
    limits = limits.value("Limits", json::object());
    u.limits.memory_mb = static_cast<int>(limits.value("MemoryBytes", int64_t{0}) >> 20);
    u.limits.cpu = static_cast<double>(limits.value("NanoCPUs", int64_t{0})) / 1e9;
    u.limits.pids = static_cast<int>(limits.value("Pids", int64_t{0}));
  }
  if (out) *out = u;
  return status::ok();
} catch (const nlohmann::json::exception& e) {
  return status::io_error(std::string("an unexpected answer from the Docker engine: ") + e.what());
}

}  // namespace swarm

std::shared_ptr<runtime_driver> make_swarm_runtime(std::shared_ptr<docker_engine> engine,
                                                   container_runtime_options options) {
  return std::make_shared<swarm::swarm_runtime>(std::move(engine), std::move(options));
}

}  // namespace berth
