#include "runtime/docker/container_events.hpp"

#include <chrono>
#include <vector>

namespace berth::docker {

namespace {
int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
constexpr auto kReconnectEvery = std::chrono::milliseconds(500);
}  // namespace

container_watches::container_watches(std::shared_ptr<docker_engine> engine, std::string data_dir,
                                     std::function<instance_status(const std::string&)> status_now)
    : engine_(std::move(engine)), data_dir_(std::move(data_dir)), status_now_(std::move(status_now)) {}

container_watches::~container_watches() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t container_watches::watch(const std::string& id, exit_callback on_exit) {
  uint64_t token;
  {
    std::lock_guard<std::mutex> l(mu_);
    token = next_token_++;
    if (auto old = by_id_.find(id); old != by_id_.end()) by_token_.erase(old->second.token);
    by_id_[id] = {token, std::move(on_exit)};
    by_token_[token] = id;
    if (!thread_.joinable()) {
      // Asked from a second before now: an exit between this watch and the stream's start is
      // replayed, not missed.
      since_ = unix_now() - 1;
      thread_ = std::thread([this] { run(); });
    }
  }
  // Registered first, asked second: an exit after this answer comes as an event.
  auto st = status_now_(id);
  if (!st.running()) fire(id, st);
  return token;
}

void container_watches::unwatch(uint64_t token) {
  std::lock_guard<std::mutex> l(mu_);
  auto t = by_token_.find(token);
  if (t == by_token_.end()) return;
  if (auto e = by_id_.find(t->second); e != by_id_.end() && e->second.token == token) by_id_.erase(e);
  by_token_.erase(t);
}

void container_watches::fire(const std::string& id, const instance_status& st) {
  exit_callback cb;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto e = by_id_.find(id);
    if (e == by_id_.end()) return;  // fired already, or unwatched
    cb = std::move(e->second.cb);
    by_token_.erase(e->second.token);
    by_id_.erase(e);
  }
  if (cb) cb(st);
}

bool container_watches::sleep_for(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> l(mu_);
  return !cv_.wait_for(l, d, [this] { return stopping_; });
}

void container_watches::on_event(const nlohmann::json& m) {
  if (!m.is_object()) return;
  if (m.contains("time") && m["time"].is_number_integer()) {
    std::lock_guard<std::mutex> l(mu_);
    since_ = std::max<int64_t>(since_, m["time"].get<int64_t>() - 1);
  }
  auto action = m.value("Action", m.value("status", ""));
  auto actor = m.value("Actor", nlohmann::json::object());
  std::string id = actor.is_object() ? actor.value("ID", m.value("id", "")) : m.value("id", "");
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!by_id_.count(id)) return;
  }
  if (action == "die") {
    auto st = status_now_(id);
    if (st.state == instance_state::running) {  // the engine went away between the event and now
      st.state = instance_state::exited;
    }
    if (st.state == instance_state::gone) {  // removed already: the event's exit code is what is known
      st.state = instance_state::exited;
      auto attrs = actor.value("Attributes", nlohmann::json::object());
      try {
        int code = std::stoi(attrs.value("exitCode", "-1"));
        if (code > 128 && code < 128 + 65) st.signal = code - 128;
        else st.exit_code = code;
      } catch (...) {
      }
    }
    fire(id, st);
  } else if (action == "destroy") {
    fire(id, instance_status{});
  }
}

void container_watches::recheck_all() {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [id, e] : by_id_) ids.push_back(id);
  }
  for (auto& id : ids)
    if (auto st = status_now_(id); !st.running()) fire(id, st);
}

void container_watches::run() {
  nlohmann::json filters = {{"type", {"container"}},
                            {"event", {"die", "destroy"}},
                            {"label", {"berth.data_dir=" + data_dir_}}};
  auto stop = [this] {
    std::lock_guard<std::mutex> l(mu_);
    return stopping_;
  };
  bool broken = false;
  while (!stop()) {
    if (broken) {
      // The stream broke (the engine restarted or went away): once it answers again, what
      // ended meanwhile may have left no event to replay, so every watched container is asked.
      if (!engine_->ping()) {
        if (!sleep_for(kReconnectEvery)) return;
        continue;
      }
      recheck_all();
    }
    int64_t since;
    {
      std::lock_guard<std::mutex> l(mu_);
      since = since_;
    }
    long http = 0;
    engine_->stream_json("GET", "/events?since=" + std::to_string(since) + "&filters=" + url_encode(filters.dump()),
                         {}, "", {},
                         [this](const nlohmann::json& m) {
                           on_event(m);
                           return true;
                         },
                         stop, std::chrono::milliseconds(0), &http);
    if (stop()) return;
    broken = true;
    {
      std::lock_guard<std::mutex> l(mu_);
      since_ = std::max<int64_t>(since_, unix_now() - 2);
    }
    if (!sleep_for(kReconnectEvery)) return;
  }
}

}  // namespace berth::docker
