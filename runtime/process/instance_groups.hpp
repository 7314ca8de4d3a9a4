// Internal to the process runtime: the cgroup of each instance it starts (runtime/process/
// cgroup.hpp), from its start to its end. Thread-safe; shared with the exit watches' callbacks.
//
// An instance gets a group when the host has cgroups and its spec sets limits; it joins it
// before exec (process_spec::cgroup_join). Its group is remembered by instance id; an instance
// adopted after a berth restart is found again through /proc/<pid>/cgroup while it runs.
// When it ends, the group says whether the OOM killer struck (remembered for later inspects),
// then what is left in it (stragglers of the instance, e.g. children of a leader the OOM
// killer took) is killed and the group removed; one that still will not go is swept later.
#pragma once
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "runtime/driver.hpp"
#include "runtime/process/cgroup.hpp"

namespace berth::detail {

class instance_groups {
 public:
  // Opens the hierarchies (cgroup_tree::open) and sweeps groups whose instances ended.
  instance_groups(const std::string& cgroup_root, const std::string& data_dir_label);
  const std::string& unavailable() const { return tree_->unavailable(); }
  const cgroup_tree& tree() const { return *tree_; }

  // A new group for `spec` (empty when limits are unavailable or the spec sets none). `lock`
  // keeps sweeps out until the child has joined it: hold it across the start.
  status place(const instance_spec& spec, cgroup* out, std::shared_lock<std::shared_mutex>* lock);
  // The start failed: its group goes.
  void discard(const cgroup& g);
  // The instance `id` runs in `g`.
  void started(const std::string& id, const cgroup& g);
  // The instance `id` (pid `pid`) is known to be alive: learn its group if not known yet.
  void adopt(const std::string& id, int pid);
  // The instance ended: whether the OOM killer killed in its group (also for an instance that
  // already ended before; false when it had no group). Its group is removed when empty.
  bool ended(const std::string& id);
  // stop(): everything still in its group is killed, and the group removed.
  void stopped(const std::string& id);
  // The group's usage and limits; not_found when the instance has no group.
  status usage(const std::string& id, resource_usage* out) const;
  // Removes the groups of instances that ended, except those whose end is yet to be read
  // (exclusive: waits for starts in progress). At construction, and after a stop.
  void sweep();

 private:
  std::shared_ptr<const cgroup_tree> tree_;
  std::shared_mutex placing_;  // starts shared, sweeps exclusive
  mutable std::mutex mu_;
  std::map<std::string, cgroup> live_;
  std::map<std::string, bool> ended_;  // id -> OOM-killed, bounded by ended_order_
  std::deque<std::string> ended_order_;
};

}  // namespace berth::detail
