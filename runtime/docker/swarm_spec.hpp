// What the swarm driver asks the engine for: the service of a project, the spec that runs one
// release of it, and how a release instance is recognised in a service or a task. Pure data:
// no engine calls (tests read these without an engine).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/driver.hpp"

namespace berth::swarm {

constexpr const char* kIdPrefix = "swarm:";

// berth-<project>: the one service of a project's production.
std::string service_name(const std::string& project);

// A release instance: the release a service spec runs, and the host port it publishes.
struct instance_key {
  std::string release;
  uint16_t port = 0;
  bool empty() const { return release.empty(); }
  bool operator==(const instance_key& o) const { return release == o.release && port == o.port; }
  bool operator!=(const instance_key& o) const { return !(*this == o); }
};

// "swarm:<service id>:<release>" <-> its parts; false when `id` is not a swarm identity.
std::string instance_id(const std::string& service_id, const std::string& release);
bool parse_instance_id(const std::string& id, std::string* service_id, std::string* release);
// The instance a ref names (its release from the id, its port from the ref).
instance_key key_of(const instance_ref& ref);

// The instance a service spec (Spec or PreviousSpec of GET /services/{id}) runs; empty when the
// spec is not berth's. And the instance of a task (GET /tasks entry).
instance_key key_of_spec(const nlohmann::json& spec);
instance_key key_of_task(const nlohmann::json& task);

// <registry>/berth/<project>:<release>: the image every node pulls.
std::string registry_image(const std::string& registry, const std::string& project, const std::string& release);

// The user a task runs as: the image's own USER when it has one, else the sandbox's uid:gid,
// else nobody (65534): never root by default.
std::string task_user(const instance_spec& spec, const std::string& image_user);

// The whole service spec (POST /services/create, /services/{id}/update) running `spec` from
// `image`: labels, env (HOST=0.0.0.0, PORT inside), user, healthcheck, capabilities dropped,
// limits, replicas, host-mode port spec.port -> PORT, start-first updates that roll back on
// failure, restarts owned by Swarm. `force` is TaskTemplate.ForceUpdate (bumped to restart the
// tasks of an unchanged spec). `data_dir`: labelled so that only this berth's services are its.
nlohmann::json service_spec(const instance_spec& spec, const std::string& image, const std::string& image_user,
                            const std::string& data_dir, uint64_t force = 0);

}  // namespace berth::swarm
