#include "runtime/docker/container_logs.hpp"

#include <chrono>
#include <cstdio>

namespace berth::docker {

log_pumps::~log_pumps() {
  stopping_ = true;
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [id, p] : pumps_)
    if (p.thread.joinable()) p.thread.join();
}

void log_pumps::reap_locked() {
  for (auto it = pumps_.begin(); it != pumps_.end();) {
    if (*it->second.done) {
      if (it->second.thread.joinable()) it->second.thread.join();
      it = pumps_.erase(it);
    } else {
      ++it;
    }
  }
}

void log_pumps::start(const std::string& id, const std::string& path, bool from_now) {
  if (path.empty() || stopping_) return;
  std::lock_guard<std::mutex> l(mu_);
  reap_locked();
  if (pumps_.count(id)) return;
  std::string since = "0";
  if (from_now) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%lld.%09lld", static_cast<long long>(ns / 1000000000),
                  static_cast<long long>(ns % 1000000000));
    since = buf;
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  auto engine = engine_;
  auto rotation = rotation_;
  std::thread t([this, engine, rotation, id, path, since, done] {
    rotating_file out(path, rotation);
    if (out.open()) {
      engine->stream_logs("/containers/" + id + "/logs?follow=1&stdout=1&stderr=1&since=" + since,
                          [&](const char* data, size_t n, bool) {
                            out.write(data, n);  // a full disk loses output, never the app
                            return true;
                          },
                          [this] { return stopping_.load(); }, std::chrono::milliseconds(0));
    }
    *done = true;
  });
  pumps_[id] = {std::move(t), done};
}

}  // namespace berth::docker
