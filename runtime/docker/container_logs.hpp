// The docker driver's log pumps: a container's output (GET /containers/{id}/logs?follow=1)
// appended to its log file (instance_spec::log) through a rotating_file, one thread per
// running container; a pump ends when its container ends, or with the object.
#pragma once
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "runtime/docker/engine.hpp"
#include "runtime/logs/rotating_file.hpp"

namespace berth::docker {

class log_pumps {
 public:
  log_pumps(std::shared_ptr<docker_engine> engine, log_rotation rotation)
      : engine_(std::move(engine)), rotation_(rotation) {}
  ~log_pumps();

  // Pumps container `id`'s output into `path` unless a pump of it runs already. `from_now`:
  // only what it writes from now on (an adopted container: what came before is in the file).
  void start(const std::string& id, const std::string& path, bool from_now);

 private:
  struct pump {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  void reap_locked();  // joins the pumps that ended

  std::shared_ptr<docker_engine> engine_;
  log_rotation rotation_;
  std::mutex mu_;
  std::map<std::string, pump> pumps_;
  std::atomic<bool> stopping_{false};
};

}  // namespace berth::docker
