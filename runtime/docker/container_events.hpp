// Exit watches of the docker driver: one thread for all of them, reading the engine's
// GET /events (containers of this berth's data dir that die or are destroyed). Started on the
// first watch, ended with the object.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "runtime/docker/engine.hpp"
#include "runtime/driver.hpp"

namespace berth::docker {

class container_watches {
 public:
  // `status_now`: what the container (engine id) is doing, asked after a die event and after
  // the events stream comes back (the engine restarted: events in between may be lost).
  container_watches(std::shared_ptr<docker_engine> engine, std::string data_dir,
                    std::function<instance_status(const std::string&)> status_now);
  ~container_watches();

  // Calls `on_exit` once, on the events thread, when container `id` ends; at once, on the
  // caller's thread, when it already has. A second watch of the same id replaces the first.
  uint64_t watch(const std::string& id, exit_callback on_exit);
  // Its callback does not run afterwards (one running now is not waited for).
  void unwatch(uint64_t token);

 private:
  struct entry {
    uint64_t token;
    exit_callback cb;
  };
  void run();
  void on_event(const nlohmann::json& m);
  void fire(const std::string& id, const instance_status& st);
  void recheck_all();
  bool sleep_for(std::chrono::milliseconds d);  // false: stopping

  std::shared_ptr<docker_engine> engine_;
  std::string data_dir_;
  std::function<instance_status(const std::string&)> status_now_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, entry> by_id_;
  std::map<uint64_t, std::string> by_token_;
  uint64_t next_token_ = 1;
  bool stopping_ = false;
  std::thread thread_;
  int64_t since_ = 0;  // unix seconds: events from here on are asked for (a reconnect replays)
};

}  // namespace berth::docker
