#include "runtime/state/project_index.hpp"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "messages/deployment.hpp"
#include "runtime/eventlog/replay_load.hpp"
#include "runtime/files/layout.hpp"

namespace berth {

namespace {

const std::string prefix = project_stream_prefix;

bool is_project_stream(const std::string& stream) { return stream.compare(0, prefix.size(), prefix) == 0; }

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What a project's stream says when it cannot be folded with the others: each stream alone,
// the unreadable ones named.
void fold_stream_by_stream(const event_log& log, log_replay& out, std::set<std::string>& unreadable) {
  out = log_replay{};
  for (auto& stream : log.streams(prefix)) {
    std::vector<event_record> events;
    auto name = stream.substr(prefix.size());
    if (auto s = log.read_stream(stream, 0, 0, &events); !s) {
      spdlog::error("project index: the stream of {} cannot be read: {}; it is parked as broken", name, s.message());
      unreadable.insert(name);
      continue;
    }
    auto& state = out.projects[name];
    for (auto& e : events) fold(state, e);
  }
  std::vector<event_record> ports;
  if (auto s = log.read_stream(ports_stream, 0, 0, &ports); !s)
    spdlog::error("project index: the port leases cannot be read: {}", s.message());
  for (auto& e : ports) fold(out.ports, e);
}

}  // namespace

bool needs_actor(const project_state& s) {
  auto& p = s.production;
  if (p.status == "running" || p.status == "exited") return true;
  for (auto& [id, d] : p.deployments)
    if (!is_terminal(d.current)) return true;
  return s.preview.status == "running" || s.preview.status == "exited";
}

project_index::project_index(index_view_settings settings) : settings_(std::move(settings)) {
  worker_ = std::thread([this] { snapshot_worker(); });
}

project_index::~project_index() {
  {
    std::lock_guard<std::mutex> lock(worker_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

void project_index::load(const std::shared_ptr<event_log>& log) {
  log_replay folds;
  std::set<std::string> unreadable;
  replay_load_stats stats;
  if (auto s = load_replay(*log, &folds, &stats); !s) {
    spdlog::warn("project index: the log cannot be folded as a whole ({}); folding stream by stream", s.message());
    fold_stream_by_stream(*log, folds, unreadable);
  } else if (!stats.snapshot_refused.empty()) {
    spdlog::warn("project index: snapshot not used: {}", stats.snapshot_refused);
  }
  for (auto it = folds.projects.begin(); it != folds.projects.end();)
    it = it->second.exists ? std::next(it) : folds.projects.erase(it);
  uint64_t seq = log->last_seq();
  std::string hash;
  if (seq > 0)
    log->scan(seq, [&](const event_record& e) {
      hash = e.hash;
      return false;
    });
  std::unique_lock lock(mutex_);
  log_ = log;
  folds_ = std::move(folds);
  unreadable_ = std::move(unreadable);
  last_seq_ = seq;
  last_hash_ = std::move(hash);
  spdlog::info("project index: {} projects (snapshot at seq {}, {} events after it)", folds_.projects.size(),
               stats.snapshot_seq, stats.tail_events);
}

void project_index::apply(const std::vector<event_record>& batch) {
  if (batch.empty()) return;
  bool due = false;
  {
    std::unique_lock lock(mutex_);
    for (auto& e : batch) {
      folds_.fold(e);
      if (!is_project_stream(e.stream)) continue;
      auto name = e.stream.substr(prefix.size());
      auto it = folds_.projects.find(name);
      // A deleted project (or an event of one nobody knows) is no project: dropped.
      if (it != folds_.projects.end() && !it->second.exists) folds_.projects.erase(it);
      if (starts_over(e)) unreadable_.erase(name);
    }
    last_seq_ = batch.back().seq;
    last_hash_ = batch.back().hash;
    since_snapshot_ += batch.size();
    due = every_ > 0 && since_snapshot_ >= every_;
    if (due) since_snapshot_ = 0;
  }
  if (due) {
    std::lock_guard<std::mutex> lock(worker_mutex_);
    due_ = true;
    wake_.notify_one();
  }
}

std::optional<project_view> project_index::view(const std::string& name) const {
  std::shared_lock lock(mutex_);
  auto it = folds_.projects.find(name);
  if (it == folds_.projects.end() || unreadable_.count(name)) return std::nullopt;
  auto& s = it->second;
  auto v = project_view_of(s, s.last_seq, s.events);
  v.with_environments = true;
  v.production = production_view_of(s.production, s.production_port,
                                     site_url(settings_.site, name, site_env::production), "");
  v.preview = preview_view_of(s.preview, s.preview.status, s.preview.reason, s.preview_port,
                              site_url(settings_.site, name, site_env::preview),
                              paths_for(settings_.data_dir, name).preview.string(),
                              exits_within(settings_.restart, now_us(), s.preview.exits_us));
  return v;
}

project_page project_index::page(const std::string& cursor, size_t limit) const {
  project_page out;
  std::shared_lock lock(mutex_);
  auto it = folds_.projects.upper_bound(cursor);
  for (; it != folds_.projects.end() && out.projects.size() < limit; ++it) {
    auto& s = it->second;
    out.projects.push_back(project_view_of(s, s.last_seq, s.events));
  }
  if (it != folds_.projects.end() && !out.projects.empty()) out.next_cursor = out.projects.back().name;
  return out;
}

std::vector<indexed_project> project_index::projects() const {
  std::vector<indexed_project> out;
  std::shared_lock lock(mutex_);
  out.reserve(folds_.projects.size() + unreadable_.size());
  for (auto& [name, s] : folds_.projects)
    if (!unreadable_.count(name)) out.push_back({name, s.sandbox_uid, s.spec.domains, false, needs_actor(s)});
  for (auto& name : unreadable_) out.push_back({name, 0, {}, true, true});
  return out;
}

bool project_index::stream_figures(const std::string& name, uint64_t& last_seq, uint64_t& events) const {
  std::shared_lock lock(mutex_);
  auto it = folds_.projects.find(name);
  if (it == folds_.projects.end()) return false;
  last_seq = it->second.last_seq;
  events = it->second.events;
  return true;
}

size_t project_index::size() const {
  std::shared_lock lock(mutex_);
  return folds_.projects.size();
}

void project_index::set_snapshot_every(uint64_t every) {
  std::unique_lock lock(mutex_);
  every_ = every;
}

bool project_index::write_snapshot(const log_replay& copy, uint64_t seq, const std::string& hash) {
  if (!log_ || seq == 0) return false;
  std::lock_guard<std::mutex> one_writer(write_mutex_);
  auto started = std::chrono::steady_clock::now();
  if (auto s = save_replay_snapshot(*log_, copy, seq, hash); !s) {
    spdlog::warn("project index: snapshot at seq {} not written: {}", seq, s.message());
    return false;
  }
  spdlog::info("project index: snapshot at seq {} written in {} ms", seq,
               std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count());
  return true;
}

bool project_index::snapshot_now() {
  log_replay copy;
  uint64_t seq = 0;
  std::string hash;
  {
    std::shared_lock lock(mutex_);
    copy = folds_;
    seq = last_seq_;
    hash = last_hash_;
  }
  return write_snapshot(copy, seq, hash);
}

// Waits for a due snapshot; the copy is taken under the shared lock (readers go on, the
// store's next apply waits for the copy only), the write happens without it.
void project_index::snapshot_worker() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(worker_mutex_);
      wake_.wait(lock, [this] { return due_ || stopping_; });
      if (stopping_) return;
      due_ = false;
    }
    snapshot_now();
  }
}

}  // namespace berth
