// The "swarm" runtime driver (runtime/driver.hpp): production releases of a project are
// updates of one Swarm service, berth-<project>, over the Docker Engine API
// (runtime/docker/engine.hpp). The engine must be a swarm manager. An instance is
// "swarm:<service id>:<release>" with its host port: the service runs that instance while its
// spec has that release on that port (labels berth.release, berth.port).
//
// What the verbs mean here (on top of runtime/driver.hpp):
// - prepare: builds berth/<project>:<release> unless it is there, and pushes it to the
//   registry (container.registry, else options.registry; none: invalid_argument). Not pushed
//   again when the registry has that image already (a rollback).
// - start: creates the service, or updates it to the release on spec.port (start-first, rolled
//   back by Swarm when a new task fails). Returns once the engine accepted it.
// - stop: the candidate the service runs now, with an earlier release before it: the service
//   rolls back to that (rollback=previous). Nothing before it: the service is removed. A
//   release the service no longer runs: its tasks are waited for.
// - inspect: running while the service runs the instance and a task is live, or its task
//   still runs; exited when an update to it rolled back or paused, or Swarm gave up restarting
//   it; gone otherwise.
// - list: one ref per service of this data dir (its current instance); only env production.
// - watch: polled by one thread. Fires when the instance failed or its service is gone; not
//   when a later start() replaced it (the deploy that did so stops it).
// - logs: the production log file, which one pump per service fills from the service's logs.
// - usage: the stats of a task container on this node (not_found when none runs here).
// - remove_artifact: the local tags of the release image. remove_project: the service (its
//   task containers waited for), the images pushed for it and the volumes Swarm made for it;
//   runtime_set calls it before the docker driver's, which removes the rest by label.
#pragma once
#include <memory>

#include "runtime/docker/docker_runtime.hpp"

namespace berth {

std::shared_ptr<runtime_driver> make_swarm_runtime(std::shared_ptr<docker_engine> engine,
                                                   container_runtime_options options);

}  // namespace berth
