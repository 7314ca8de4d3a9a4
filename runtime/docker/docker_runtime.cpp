// The docker driver: prepare, inspect, list, watch, logs, usage (start and stop:
// docker_start.cpp; removals: docker_cleanup.cpp).
#include "runtime/docker/docker_runtime.hpp"

#include <cmath>

#include "runtime/docker/container_spec.hpp"
#include "runtime/docker/docker_driver.hpp"
#include "runtime/docker/images.hpp"
#include "runtime/process/cgroup.hpp"
#include "runtime/process/process_driver.hpp"

namespace berth {

std::shared_ptr<runtime_driver> make_docker_runtime(std::shared_ptr<docker_engine> engine,
                                                    container_runtime_options options) {
  return std::make_shared<docker::docker_driver>(std::move(engine), std::move(options));
}

namespace docker {

namespace {
// inspect() and usage() are asked from actors: a short wait, never a hang.
constexpr auto kQuickTimeout = std::chrono::seconds(2);
}  // namespace

docker_driver::docker_driver(std::shared_ptr<docker_engine> engine, container_runtime_options options)
    : engine_(std::move(engine)), options_(std::move(options)) {
  // Nothing here talks to the engine: a server whose projects never use docker starts as fast.
  pumps_ = std::make_unique<log_pumps>(engine_, options_.logs);
  watches_ = std::make_unique<container_watches>(engine_, options_.data_dir,
                                                 [this](const std::string& id) { return status_now(id); });
}

status docker_driver::ensure_release_image(const instance_spec& spec,
                                           const std::function<void(const std::string&)>& output,
                                           const std::function<bool()>& cancelled) {
  auto tag = release_image(spec.labels.project, spec.labels.release);
  bool exists = false;
  if (auto s = image_exists(*engine_, tag, &exists); !s) return s;
  if (exists) {
    if (output) output("image " + tag + " is already built");
    return status::ok();
  }
  std::filesystem::path folder = spec.from.id;
  std::error_code ec;
  if (folder.empty() || !std::filesystem::is_directory(folder, ec))
    return status::not_found("no release folder " + folder.string() + " to build " + tag + " from");
  std::string dockerfile;
  if (!std::filesystem::exists(folder / "Dockerfile", ec))
    if (auto s = generated_dockerfile(spec.container.base, spec.command, &dockerfile); !s) return s;
  image_build b{folder, dockerfile, tag,
                release_image_labels(spec.labels.project, spec.labels.release, spec.labels.env, options_.data_dir),
                options_.data_dir};
  return build_image(*engine_, b, output, cancelled);
}

status docker_driver::prepare(const instance_spec& spec, const std::function<void(const std::string&)>& output,
                              const std::function<bool()>& cancelled, artifact* out) try {
  if (spec.labels.project.empty()) return status::invalid_argument("an image needs a project");
  if (spec.labels.env != "production" || spec.labels.release.empty()) {
    // The preview runs the base image as it is: nothing to build.
    if (spec.container.base.empty())
      return status::invalid_argument("image.base is required to run the preview in a container");
    bool exists = false;
    if (auto s = image_exists(*engine_, spec.container.base, &exists); !s) return s;
    if (!exists) return status::not_found("the image " + spec.container.base + " is not on the Docker engine");
    if (out) out->id = spec.container.base;
    return status::ok();
  }
  if (auto s = ensure_release_image(spec, output, cancelled); !s) return s;
  if (out) out->id = release_image(spec.labels.project, spec.labels.release);
  return status::ok();
} catch (const nlohmann::json::exception& e) {
  return status::io_error(std::string("an unexpected answer from the Docker engine: ") + e.what());
}

status docker_driver::inspect_container(const std::string& id, engine_reply* r,
                                        std::chrono::milliseconds timeout) const {
  if (id.empty()) {
    r->http = 404;
    return status::ok();
  }
  if (auto s = engine_->call("GET", "/containers/" + id + "/json", nullptr, r, timeout); !s) return s;
  if (r->ok()) {
    const auto& b = r->body;
    bool ours = b.is_object() && b.contains("Config") && b["Config"].is_object() && b["Config"].contains("Labels") &&
                b["Config"]["Labels"].is_object() && b["Config"]["Labels"].value("berth.data_dir", "") == options_.data_dir;
    if (!ours) r->http = 404;  // another berth's (or not berth's at all): not this driver's business
  }
  return status::ok();
}

instance_status docker_driver::status_now(const std::string& id) const try {
  engine_reply r;
  instance_status running;
  running.state = instance_state::running;
  if (auto s = inspect_container(id, &r, kQuickTimeout); !s) return running;
  if (r.http == 404) return instance_status{};
  if (!r.ok() || !r.body.is_object()) return running;
  return status_of(r.body);
} catch (const nlohmann::json::exception&) {
  instance_status running;  // as when the engine cannot answer: what serves keeps serving
  running.state = instance_state::running;
  return running;
}

instance_status docker_driver::inspect(const instance_ref& ref) const { return status_now(container_id_of(ref.id)); }

std::vector<instance_ref> docker_driver::list(const instance_labels& filter) const try {
  std::map<std::string, std::string> labels{{"berth.data_dir", options_.data_dir}, {"berth.runtime", "docker"}};
  if (!filter.project.empty()) labels["berth.project"] = filter.project;
  if (!filter.env.empty()) labels["berth.env"] = filter.env;
  if (!filter.release.empty()) labels["berth.release"] = filter.release;
  engine_reply r;
  std::vector<instance_ref> out;
  if (!engine_->call("GET", "/containers/json?all=1&" + label_filter(labels), nullptr, &r, kQuickTimeout) || !r.ok() ||
      !r.body.is_array())
    return out;  // engine down: nothing known
  for (auto& c : r.body) {
    if (!c.is_object()) continue;
    auto ref = ref_of(c);
    engine_reply one;  // the pid is only in the full inspect
    if (inspect_container(c.value("Id", ""), &one, kQuickTimeout) && one.ok()) ref = ref_of(one.body);
    out.push_back(ref);
  }
  return out;
} catch (const nlohmann::json::exception&) {
  return {};  // as when the engine is down: nothing known
}

uint64_t docker_driver::watch(const instance_ref& ref, exit_callback on_exit) {
  auto id = container_id_of(ref.id);
  engine_reply r;
  // Adopted (a restart of berth): its output from now on goes on into its log file.
  if (inspect_container(id, &r, kQuickTimeout) && r.ok() && status_of(r.body).running()) {
    auto labels = r.body["Config"].value("Labels", nlohmann::json::object());
    pumps_->start(id, labels.value("berth.log", ""), true);
  }
  return watches_->watch(id, std::move(on_exit));
}

void docker_driver::unwatch(uint64_t token) { watches_->unwatch(token); }

std::vector<std::string> docker_driver::logs(const instance_spec& spec, const instance_ref&, size_t lines) const {
  return process_driver::tail(spec.log.string(), lines);
}

// From the container's cgroup, found through its PID 1 on the host (recorded at start and at
// adoption): a few small files, no call to the engine, so GET views may ask it in an actor.
status docker_driver::usage(const instance_ref& ref, resource_usage* out) const {
  cgroup g;
  if (!group_of_process(ref.pid, container_id_of(ref.id), &g)) return status::not_found("not running");
  return read_usage(g, out);
}

}  // namespace docker
}  // namespace berth
