// The server's runtime drivers behind one runtime_driver (runtime/driver.hpp), so that actors
// and the pipeline hold one driver whatever runs a project. A new instance (and an artifact)
// goes to the driver its labels name (instance_labels::runtime: "process" or "", "docker",
// "swarm"); a recorded identity goes back to the driver that made it, by its prefix
// ("docker:", "swarm:"; none: a process), so a project that changed runtime still stops and
// adopts what the old one runs. Thread-safe as its drivers are.
#pragma once
#include <memory>
#include <string>

#include "runtime/driver.hpp"

namespace berth {

class runtime_set final : public runtime_driver {
 public:
  // `docker` and `swarm` may be null: those runtimes are not available, `why_not` says why.
  runtime_set(std::shared_ptr<runtime_driver> process, std::shared_ptr<runtime_driver> docker,
              std::shared_ptr<runtime_driver> swarm, std::string why_not = "");
  const char* name() const override { return "runtimes"; }

  status prepare(const instance_spec& spec, const std::function<void(const std::string&)>& output,
                 const std::function<bool()>& cancelled, artifact* out) override;
  status remove_artifact(const instance_labels& labels) override;
  status remove_project(const std::string& project) override;
  // The docker driver's (swarm's images are the same local images).
  std::vector<std::string> artifacts(const std::string& project) const override;
  status start(const instance_spec& spec, instance_ref* out) override;
  status stop(const instance_ref& ref, std::chrono::milliseconds grace) override;
  instance_status inspect(const instance_ref& ref) const override;
  // Every driver's when filter.runtime is "" (running()).
  std::vector<instance_ref> list(const instance_labels& filter) const override;
  uint64_t watch(const instance_ref& ref, exit_callback on_exit) override;
  void unwatch(uint64_t token) override;
  std::vector<std::string> logs(const instance_spec& spec, const instance_ref& ref, size_t lines) const override;
  status usage(const instance_ref& ref, resource_usage* out) const override;
  std::string limits_unavailable() const override { return process_->limits_unavailable(); }
  std::string runtime_unavailable(const std::string& runtime) const override;

 private:
  enum which : uint64_t { process_i = 0, docker_i = 1, swarm_i = 2 };
  runtime_driver* by_runtime(const std::string& runtime) const;  // null: not available
  // The drivers instances with these labels run on: a swarm project's preview (and build) is
  // a container on this host; "" runtime: every driver.
  std::vector<runtime_driver*> running(const instance_labels& labels) const;
  which of_id(const std::string& id) const;
  runtime_driver* at(which w) const;

  std::shared_ptr<runtime_driver> process_, docker_, swarm_;
  std::string why_not_;
};

// "process" | "docker" | "swarm": the runtime that started a recorded instance (by its id).
std::string runtime_of(const instance_ref& r);
// The runtimes a project's instances may be in: its manifest's, and that of the instance its log
// recorded when the project changed runtime since. What a start-up sweep asks, rather than
// every runtime (a container engine call for each process project).
std::vector<std::string> runtimes_to_sweep(const std::string& manifest_runtime, const instance_ref& recorded);

}  // namespace berth
