// The "swarm" runtime driver (runtime/driver.hpp): production releases of a project are
// updates of one Swarm service, over the Docker Engine API (runtime/docker/engine.hpp).
#pragma once
#include <memory>

#include "runtime/docker/docker_runtime.hpp"

namespace berth {

std::shared_ptr<runtime_driver> make_swarm_runtime(std::shared_ptr<docker_engine> engine,
                                                   container_runtime_options options);

}  // namespace berth
