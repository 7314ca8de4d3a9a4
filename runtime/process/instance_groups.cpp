#include "runtime/process/instance_groups.hpp"

#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

namespace berth::detail {

namespace {
constexpr size_t kEndedKept = 4096;  // OOM verdicts remembered for inspect() after the end
}

instance_groups::instance_groups(const std::string& cgroup_root, const std::string& data_dir_label)
    : tree_(cgroup_tree::open(cgroup_root, data_dir_label)) {
  sweep();
  if (!tree_->unavailable().empty()) return;
  if (auto n = tree_->sweep_abandoned(std::chrono::minutes(10)); n > 0)
    spdlog::info("cgroups: removed {} group(s) left by other data dirs' berths", n);
}

status instance_groups::place(const instance_spec& spec, cgroup* out, std::shared_lock<std::shared_mutex>* lock) {
  *out = {};
  if (!tree_->unavailable().empty() || !spec.limits.any()) return status::ok();
  *lock = std::shared_lock<std::shared_mutex>(placing_);
  auto name = spec.labels.env.empty() ? std::string("instance") : spec.labels.env;
  if (!spec.labels.release.empty()) name += "-" + spec.labels.release;
  return tree_->create(spec.labels.project, name, spec.limits, out);
}

void instance_groups::discard(const cgroup& g) {
  if (g.empty()) return;
  kill_all(g);
  remove_group(g);
}

void instance_groups::started(const std::string& id, const cgroup& g) {
  if (g.empty()) return;
  std::lock_guard<std::mutex> l(mu_);
  live_[id] = g;
}

void instance_groups::adopt(const std::string& id, int pid) {
  if (!tree_->unavailable().empty()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (live_.count(id) || ended_.count(id)) return;
  }
  cgroup g;
  if (!tree_->find(pid, &g)) return;
  std::lock_guard<std::mutex> l(mu_);
  live_.emplace(id, g);
}

bool instance_groups::ended(const std::string& id) {
  cgroup g;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = ended_.find(id); it != ended_.end()) return it->second;
    auto it = live_.find(id);
    if (it == live_.end()) return false;
    g = it->second;
    live_.erase(it);
  }
  bool oom = oom_kills(g) > 0;
  if (!remove_group(g)) {  // stragglers of the instance (its leader is gone): they end with it
    kill_all(g);
    for (int i = 0; i < 20 && !remove_group(g).is_ok(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::lock_guard<std::mutex> l(mu_);
  ended_[id] = oom;
  ended_order_.push_back(id);
  while (ended_order_.size() > kEndedKept) {
    ended_.erase(ended_order_.front());
    ended_order_.pop_front();
  }
  return oom;
}

void instance_groups::stopped(const std::string& id) {
  cgroup g;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = live_.find(id);
    if (it == live_.end()) return;
    g = it->second;
  }
  if (auto s = kill_all(g); !s) spdlog::warn("stopping an instance: {}", s.message());
  ended(id);
  // A killed process leaves its group once the kernel has finished its exit: a few tries.
  for (int i = 0; i < 50 && !remove_group(g).is_ok(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  sweep();  // and groups of instances that ended with a straggler still in them then
}

status instance_groups::usage(const std::string& id, resource_usage* out) const {
  cgroup g;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = live_.find(id);
    if (it == live_.end()) return status::not_found("no cgroup");
    g = it->second;
  }
  return read_usage(g, out);
}

void instance_groups::sweep() {
  if (!tree_->unavailable().empty()) return;
  std::unique_lock<std::shared_mutex> l(placing_);
  std::set<std::string> keep;
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& [id, group] : live_) keep.insert(group.dirs.begin(), group.dirs.end());
  }
  if (auto n = tree_->sweep(keep); n > 0) spdlog::info("cgroups: removed {} group(s) of instances that ended", n);
}

}  // namespace berth::detail
