// What the docker driver asks the engine for: container and volume names, labels, the body of
// POST /containers/create, and what a container's inspect JSON means to berth.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/driver.hpp"

namespace berth::docker {

constexpr const char* kIdPrefix = "docker:";

// berth-<project>-<env>-<release>; berth-<project>-<env> when there is no release (the preview).
std::string container_name(const instance_labels& l);
// berth-<project>-<name> for production, berth-<project>-<env>-<name> for any other env.
std::string volume_name(const instance_labels& l, const std::string& name);
// "docker:<id>" <-> "<id>" ("" when `ref_id` is not a docker identity).
std::string container_id_of(const std::string& ref_id);

// The port the app listens on inside: image.port when set, else the host port.
uint16_t inner_port(const instance_spec& spec);

// The labels of a container: berth.project, berth.env, berth.release, berth.data_dir,
// berth.port, berth.log, berth.runtime=docker (what list() selects by: swarm's task
// containers are not this driver's).
nlohmann::json container_labels(const instance_spec& spec, const std::string& data_dir);

// The body of POST /containers/create for `spec` on `image`. Env: spec.env with HOST=0.0.0.0,
// PORT (inner_port) and BERTH_DATA_DIR=docker:<data dir> (so the process driver, which lists
// host processes by their BERTH_* variables, never takes a container's for its own). `image_user`: the image's own
// USER ("" none): kept; else the sandbox's uid:gid when it has one, else nobody (65534).
nlohmann::json create_body(const instance_spec& spec, const std::string& image, const std::string& image_user,
                           const std::string& data_dir);

// What GET /containers/{id}/json says about the instance (State.Running, ExitCode, OOMKilled;
// an exit code 128+n of a container that was not running is "killed by signal n").
instance_status status_of(const nlohmann::json& inspect);

// The ref of a container from its inspect JSON (or a /containers/json entry: then pid 0).
instance_ref ref_of(const nlohmann::json& container);

}  // namespace berth::docker
