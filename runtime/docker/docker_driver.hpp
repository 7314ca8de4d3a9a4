// The docker driver's class (make_docker_runtime, runtime/docker/docker_runtime.hpp), shared by
// the files that implement it: docker_runtime.cpp (prepare, inspect, list, watch, logs,
// usage), docker_start.cpp (start, stop), docker_volumes.cpp, docker_cleanup.cpp (remove_artifact, remove_project).
#pragma once
#include <memory>
#include <string>

#include "runtime/docker/container_events.hpp"
#include "runtime/docker/container_logs.hpp"
#include "runtime/docker/docker_runtime.hpp"
#include "runtime/docker/engine.hpp"

namespace berth::docker {

class docker_driver final : public runtime_driver {
 public:
  docker_driver(std::shared_ptr<docker_engine> engine, container_runtime_options options);
  const char* name() const override { return "docker"; }

  status prepare(const instance_spec& spec, const std::function<void(const std::string&)>& output,
                 const std::function<bool()>& cancelled, artifact* out) override;
  status remove_artifact(const instance_labels& labels) override;
  status remove_project(const std::string& project) override;
  std::vector<std::string> artifacts(const std::string& project) const override;
  status start(const instance_spec& spec, instance_ref* out) override;
  status stop(const instance_ref& ref, std::chrono::milliseconds grace) override;
  // Engine unreachable: running (what serves keeps serving; berth acts on facts, never on a
  // question that failed).
  instance_status inspect(const instance_ref& ref) const override;
  std::vector<instance_ref> list(const instance_labels& filter) const override;
  uint64_t watch(const instance_ref& ref, exit_callback on_exit) override;
  void unwatch(uint64_t token) override;
  std::vector<std::string> logs(const instance_spec& spec, const instance_ref& ref, size_t lines) const override;
  status usage(const instance_ref& ref, resource_usage* out) const override;
  std::string limits_unavailable() const override { return ""; }
  // A swarm project's preview runs here too.
  std::string runtime_unavailable(const std::string& runtime) const override {
    return runtime == "docker" || runtime == "swarm" ? "" : "not run by the docker driver";
  }

 private:
  // The image the instance runs: production's release image (built when missing), else
  // container.base. *user: the image's own USER.
  status image_for(const instance_spec& spec, std::string* image, std::string* user);
  // The release image from spec.from.id unless it is there; `output` gets the build's lines.
  status ensure_release_image(const instance_spec& spec, const std::function<void(const std::string&)>& output,
                              const std::function<bool()>& cancelled);
  // Frees the container name for a new instance: a dead holder is removed; a running one
  // leaves *name with "-<port>" appended.
  status claim_name(const instance_spec& spec, std::string* name);
  // Creates the named volumes of spec.container.volumes that are not there yet; *fresh gets
  // the paths inside of those just made.
  status make_volumes(const instance_spec& spec, std::vector<std::string>* fresh);
  // Gives the fresh volumes of created container `id` to the user it runs as (a new volume is
  // root's: a non-root app could not write to it), through the engine's archive verb.
  // `user`: the container's User ("uid[:gid]" or a name the image's /etc/passwd knows).
  status own_volumes(const std::string& id, const std::string& user, const std::vector<std::string>& fresh);
  status remove_container(const std::string& id) const;
  // GET /containers/{id}/json of one of this berth's containers: ok with http 404 when it is
  // not there (or belongs to another data dir).
  status inspect_container(const std::string& id, engine_reply* r, std::chrono::milliseconds timeout) const;
  instance_status status_now(const std::string& id) const;

  std::shared_ptr<docker_engine> engine_;
  container_runtime_options options_;
  std::unique_ptr<log_pumps> pumps_;
  std::unique_ptr<container_watches> watches_;
};

}  // namespace berth::docker
