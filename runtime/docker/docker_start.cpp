// The docker driver: start and stop.
#include <csignal>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "runtime/docker/container_spec.hpp"
#include "runtime/docker/docker_driver.hpp"
#include "runtime/docker/images.hpp"

namespace berth::docker {

namespace {

constexpr auto kCallTimeout = std::chrono::seconds(30);

// start's 400/500 when the command cannot run: the release's fault, not the engine's.
bool missing_program(const std::string& words) {
  return words.find("executable file not found") != std::string::npos ||
         words.find("no such file or directory") != std::string::npos;
}

// A container whose main process is PID 1 of its namespace and installs no SIGTERM handler
// (busybox httpd, most `exec app`) never sees the engine's SIGTERM: the kernel drops it, so a
// grace only delays the kill, and in direct switching that delay is the gap. Read from the
// host's /proc (the engine is local); false when it cannot be told.
bool deaf_to_term(const nlohmann::json& c) {
  auto state = c.value("State", nlohmann::json::object());
  auto config = c.value("Config", nlohmann::json::object());
  auto stop_signal = config.is_object() ? config.value("StopSignal", "") : "";
  int pid = state.is_object() ? state.value("Pid", 0) : 0;
  if (pid <= 0 || !(stop_signal.empty() || stop_signal == "SIGTERM" || stop_signal == "15")) return false;
  if (c.value("HostConfig", nlohmann::json::object()).value("Init", false)) return false;  // docker-init forwards
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("SigCgt:", 0) == 0) {
      unsigned long long caught = std::strtoull(line.c_str() + 7, nullptr, 16);
      return (caught & (1ULL << (SIGTERM - 1))) == 0;
    }
  return false;
}

}  // namespace

status docker_driver::image_for(const instance_spec& spec, std::string* image, std::string* user) {
  if (spec.labels.env == "production" && !spec.labels.release.empty()) {
    // Built on demand: a keeper restart after the image was lost still finds something to run.
    if (auto s = ensure_release_image(spec, nullptr, nullptr); !s) return s;
    *image = release_image(spec.labels.project, spec.labels.release);
  } else {
    if (spec.container.base.empty())
      return status::invalid_argument("image.base is required to run the preview in a container");
    *image = spec.container.base;
  }
  bool exists = false;
  nlohmann::json info;
  if (auto s = image_exists(*engine_, *image, &exists, &info); !s) return s;
  if (!exists) return status::not_found("the image " + *image + " is not on the Docker engine");
  auto config = info.value("Config", nlohmann::json::object());
  *user = config.is_object() && config.contains("User") && config["User"].is_string() ? config["User"].get<std::string>()
                                                                                        : "";
  return status::ok();
}

status docker_driver::claim_name(const instance_spec& spec, std::string* name) {
  *name = container_name(spec.labels);
  for (int round = 0; round < 2; ++round) {
    engine_reply r;
    if (auto s = engine_->call("GET", "/containers/" + *name + "/json", nullptr, &r, kCallTimeout); !s) return s;
    if (r.http == 404) return status::ok();
    if (!r.ok()) return status::io_error(r.error());
    if (!status_of(r.body).running()) return remove_container(r.body.value("Id", *name));
    // Direct switch mode runs the same release on the stable port while the candidate runs.
    if (round == 0) *name += "-" + std::to_string(spec.port);
  }
  return status::io_error("a running container already holds the name " + *name);
}

status docker_driver::remove_container(const std::string& id) const {
  engine_reply r;
  // v=1: anonymous volumes (an image's VOLUME) go with it; named ones are kept.
  if (auto s = engine_->call("DELETE", "/containers/" + id + "?force=1&v=1", nullptr, &r, kCallTimeout); !s) return s;
  if (r.ok() || r.http == 404) return status::ok();
  // 409 "removal already in progress": someone else is removing it.
  if (r.http == 409 && r.error().find("already in progress") != std::string::npos) return status::ok();
  return status::io_error(r.error());
}

status docker_driver::start(const instance_spec& spec, instance_ref* out) try {
  if (spec.labels.project.empty() || spec.labels.env.empty())
    return status::invalid_argument("a container needs a project and an env");
  if (spec.port == 0) return status::invalid_argument("a container needs a host port");
  std::string image, user, name;
  if (auto s = image_for(spec, &image, &user); !s) return s;
  if (auto s = claim_name(spec, &name); !s) return s;
  std::vector<std::string> fresh;
  if (auto s = make_volumes(spec, &fresh); !s) return s;

  engine_reply r;
  if (auto s = engine_->call("POST", "/containers/create?name=" + url_encode(name),
                             create_body(spec, image, user, options_.data_dir), &r, kCallTimeout);
      !s)
    return s;
  if (r.http == 404) return status::not_found(r.error());
  if (r.http == 400) return status::invalid_argument(r.error());
  if (!r.ok()) return status::io_error(r.error());
  std::string id = r.body.value("Id", "");

  engine_reply started;
  auto s = own_volumes(id, user.empty() ? create_body(spec, image, "", options_.data_dir)["User"].get<std::string>() : user,
                       fresh);
  if (s) s = engine_->call("POST", "/containers/" + id + "/start", nullptr, &started, kCallTimeout);
  if (s && !started.ok()) {
    auto words = started.error();
    s = missing_program(words) ? status::not_found(words)
        : started.http == 400  ? status::invalid_argument(words)
                               : status::io_error(words);
  }
  if (!s) {
    remove_container(id);  // nothing of a failed start is left behind
    return s;
  }
  pumps_->start(id, spec.log.string(), false);
  engine_reply now;
  instance_ref ref;
  ref.id = kIdPrefix + id;
  ref.port = spec.port;
  ref.project = spec.labels.project;
  if (engine_->call("GET", "/containers/" + id + "/json", nullptr, &now, kCallTimeout) && now.ok())
    ref.pid = now.body.value("State", nlohmann::json::object()).value("Pid", 0);
  *out = ref;
  return status::ok();
} catch (const nlohmann::json::exception& e) {
  return status::io_error(std::string("an unexpected answer from the Docker engine: ") + e.what());
}

status docker_driver::stop(const instance_ref& ref, std::chrono::milliseconds grace) try {
  auto id = container_id_of(ref.id);
  if (id.empty()) return status::ok();
  engine_reply c;
  if (auto s = inspect_container(id, &c, kCallTimeout); !s) return s;
  if (c.http == 404) return status::ok();  // gone, or another berth's: left alone
  auto t = deaf_to_term(c.body) ? 0L : static_cast<long>(std::ceil(static_cast<double>(grace.count()) / 1000.0));
  engine_reply r;
  // The engine waits t seconds and then kills: the call must outlive that.
  if (auto s = engine_->call("POST", "/containers/" + id + "/stop?t=" + std::to_string(t), nullptr, &r,
                             std::chrono::seconds(t) + kCallTimeout);
      !s)
    return s;
  if (!r.ok() && r.http != 304 && r.http != 404) return status::io_error(r.error());
  return remove_container(id);
} catch (const nlohmann::json::exception& e) {
  return status::io_error(std::string("an unexpected answer from the Docker engine: ") + e.what());
}

}  // namespace berth::docker
