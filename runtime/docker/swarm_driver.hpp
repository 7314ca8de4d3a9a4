// The swarm driver's parts (make_swarm_runtime, runtime/docker/swarm_runtime.hpp): the verbs in
// swarm_runtime.cpp, image and cleanup verbs in swarm_images.cpp, watches and log pumps in
// swarm_watch.cpp. A release instance is "swarm:<service id>:<release>" with its host port;
// the service's spec says which instance it runs (labels berth.release, berth.port).
#pragma once
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "runtime/docker/docker_runtime.hpp"
#include "runtime/docker/engine.hpp"
#include "runtime/docker/swarm_state.hpp"

namespace berth::swarm {

// The X-Registry-Auth header line for "user:password" at `registry` (swarm_images.cpp).
std::string auth_header(const std::string& auth, const std::string& registry);

class swarm_runtime final : public runtime_driver {
 public:
  swarm_runtime(std::shared_ptr<docker_engine> engine, container_runtime_options options);
  ~swarm_runtime() override;
  const char* name() const override { return "swarm"; }

  status prepare(const instance_spec& spec, const std::function<void(const std::string&)>& output,
                 const std::function<bool()>& cancelled, artifact* out) override;
  status remove_artifact(const instance_labels& labels) override;
  status remove_project(const std::string& project) override;
  status start(const instance_spec& spec, instance_ref* out) override;
  status stop(const instance_ref& ref, std::chrono::milliseconds grace) override;
  instance_status inspect(const instance_ref& ref) const override;
  std::vector<instance_ref> list(const instance_labels& filter) const override;
  // Fires when the instance failed (its update rolled back or paused, its tasks failed and Swarm
  // gave up) or its service is gone. A release replaced by a later start() (a deploy's doing:
  // the deploy stops it) is not news; inspect() says gone, which berth's keeper pass sees.
  uint64_t watch(const instance_ref& ref, exit_callback on_exit) override;
  void unwatch(uint64_t token) override;
  std::vector<std::string> logs(const instance_spec& spec, const instance_ref& ref, size_t lines) const override;
  status usage(const instance_ref& ref, resource_usage* out) const override;
  std::string limits_unavailable() const override { return ""; }

  // The registry images of `spec` go to: container.registry, else the server's default.
  std::string registry_of(const instance_spec& spec) const;

 private:
  // GET /services/{id_or_name} (*service null when there is none, or it is another berth's)
  // and, when `tasks`, its tasks. io_error when the engine cannot be reached.
  status read(const std::string& id_or_name, nlohmann::json* service, nlohmann::json* tasks) const;
  release_state state(const instance_ref& ref) const;
  status pull(const instance_spec& spec) const;
  status post_spec(const std::string& path, const nlohmann::json& body, const instance_spec& spec,
                   engine_reply* out) const;
  bool ours(const nlohmann::json& service) const;
  // Waits until nothing of the instance runs any more, up to `grace` (then its containers on
  // this node are killed) plus a few seconds.
  void wait_gone(const std::string& service_id, const instance_key& key, std::chrono::milliseconds grace) const;
  status remove_service(const std::string& service_id);

  // swarm_watch.cpp: one thread for every watch; one log pump per service.
  void watch_loop();
  void pump_logs(const std::string& service_id, const std::string& path);
  void stop_pump(const std::string& service_id);

  std::shared_ptr<docker_engine> engine_;
  container_runtime_options options_;

  struct watched {
    instance_ref ref;
    exit_callback on_exit;
  };
  mutable std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  std::map<uint64_t, watched> watches_;
  uint64_t next_token_ = 1;
  std::thread watcher_;
  bool stopping_ = false;
  std::mutex callback_mu_;  // one callback at a time

  struct pump {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> stop;
  };
  std::mutex pump_mu_;
  std::map<std::string, pump> pumps_;
};

}  // namespace berth::swarm
