// The "docker" runtime driver (runtime/driver.hpp): a release is an image, an instance a
// container, over the Docker Engine API (runtime/docker/engine.hpp).
#pragma once
#include <memory>
#include <string>

#include "runtime/driver.hpp"
#include "runtime/logs/rotating_file.hpp"

namespace berth {

class docker_engine;

struct container_runtime_options {
  std::string data_dir;       // labelled on everything berth makes (berth.data_dir): never another berth's
  std::string registry;       // swarm: the default registry (host[:port]) images are pushed to ("" none)
  log_rotation logs;          // instances' output files (instance_spec::log) rotate so
};

// Nothing is asked of the engine until a verb needs it (a server whose projects never use
// docker starts as fast as without it). Beyond runtime_driver's contracts: inspect() answers
// running when the engine cannot be reached (what serves keeps serving), list() nothing.
std::shared_ptr<runtime_driver> make_docker_runtime(std::shared_ptr<docker_engine> engine,
                                                    container_runtime_options options);

}  // namespace berth
