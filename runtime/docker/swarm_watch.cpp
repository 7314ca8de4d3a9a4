// The swarm driver's watches (one thread polls every watched service: no thread per watch) and
// its log pumps (one per service: the service's output, whatever task writes it, appended to
// the production log file named by the service's berth.log label).
#include <ctime>
#include <set>

#include "runtime/docker/swarm_driver.hpp"
#include "runtime/logs/rotating_file.hpp"

namespace berth::swarm {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kWatchEvery = 1s;
constexpr auto kReconnect = 1s;

}  // namespace

uint64_t swarm_runtime::watch(const instance_ref& ref, exit_callback on_exit) {
  std::string service_id;
  if (!parse_instance_id(ref.id, &service_id, nullptr)) {
    on_exit(instance_status{});
    return 0;
  }
  auto now = state(ref);
  if (!now.status.running() && !now.replaced) {
    on_exit(now.status);
    return 0;
  }
  // An instance adopted after a restart: its service's output goes on into its log file.
  json service;
  if (read(service_id, &service, nullptr) && service.is_object()) {
    auto labels = service["Spec"].value("Labels", json::object());
    if (labels.is_object() && labels.value("berth.log", std::string()) != "")
      pump_logs(service_id, labels["berth.log"].get<std::string>());
  }
  std::lock_guard<std::mutex> lock(watch_mu_);
  for (auto it = watches_.begin(); it != watches_.end();)  // one watch per instance
    it = it->second.ref.id == ref.id ? watches_.erase(it) : std::next(it);
  auto token = next_token_++;
  watches_[token] = {ref, std::move(on_exit)};
  if (!watcher_.joinable()) watcher_ = std::thread([this] { watch_loop(); });
  return token;
}

void swarm_runtime::unwatch(uint64_t token) {
  std::lock_guard<std::mutex> lock(watch_mu_);
  watches_.erase(token);
}

void swarm_runtime::watch_loop() {
  std::unique_lock<std::mutex> lock(watch_mu_);
  while (!stopping_) {
    watch_cv_.wait_for(lock, kWatchEvery, [this] { return stopping_; });
    if (stopping_) break;
    auto snapshot = watches_;
    lock.unlock();
    // One read per service, however many of its instances are watched.
    std::map<std::string, std::pair<json, json>> seen;
    std::set<std::string> unreadable;
    for (auto& [token, w] : snapshot) {
      std::string service_id;
      parse_instance_id(w.ref.id, &service_id, nullptr);
      if (unreadable.count(service_id)) continue;
      if (!seen.count(service_id)) {
        json service, tasks;
        if (!read(service_id, &service, &tasks)) {  // the engine is away: nothing is known to have ended
          unreadable.insert(service_id);
          continue;
        }
        seen[service_id] = {std::move(service), std::move(tasks)};
      }
      auto& [service, tasks] = seen[service_id];
      release_state st;
      try {
        st = state_of(service, tasks, key_of(w.ref));
      } catch (const nlohmann::json::exception&) {
        continue;  // an answer of another shape: nothing is known to have ended
      }
      if (st.status.running() || st.replaced) continue;
      {
        std::lock_guard<std::mutex> again(watch_mu_);
        if (!watches_.erase(token)) continue;  // unwatched meanwhile
      }
      std::lock_guard<std::mutex> one(callback_mu_);
      w.on_exit(st.status);
    }
    lock.lock();
  }
}

void swarm_runtime::pump_logs(const std::string& service_id, const std::string& path) {
  std::lock_guard<std::mutex> lock(pump_mu_);
  for (auto it = pumps_.begin(); it != pumps_.end();) {  // join the pumps that ended
    if (it->second.stop->load()) {
      if (it->second.thread.joinable()) it->second.thread.join();
      it = pumps_.erase(it);
    } else {
      ++it;
    }
  }
  if (pumps_.count(service_id)) return;
  auto stop = std::make_shared<std::atomic<bool>>(false);
  auto since = std::time(nullptr);
  std::thread t([this, service_id, path, stop, since]() mutable {
    rotating_file file(path, options_.logs);
    if (!file.open()) {
      stop->store(true);
      return;
    }
    while (!stop->load()) {
      auto from = since;
      since = std::time(nullptr);
      engine_->stream_logs(
          "/services/" + service_id + "/logs?follow=1&stdout=1&stderr=1&timestamps=0&since=" + std::to_string(from),
          [&](const char* data, size_t n, bool) { return file.write(data, n).is_ok(); },
          [&] { return stop->load(); }, std::chrono::milliseconds(0));
      if (stop->load()) break;
      json service;  // the stream ended: the service is gone, or the engine went away for a while
      if (read(service_id, &service, nullptr) && service.is_null()) break;
      for (int i = 0; i < 10 && !stop->load(); ++i) std::this_thread::sleep_for(kReconnect / 10);
    }
    stop->store(true);
  });
  pumps_[service_id] = {std::move(t), stop};
}

void swarm_runtime::stop_pump(const std::string& service_id) {
  pump p;
  {
    std::lock_guard<std::mutex> lock(pump_mu_);
    auto it = pumps_.find(service_id);
    if (it == pumps_.end()) return;
    p = std::move(it->second);
    pumps_.erase(it);
  }
  p.stop->store(true);
  if (p.thread.joinable()) p.thread.join();
}

}  // namespace berth::swarm
