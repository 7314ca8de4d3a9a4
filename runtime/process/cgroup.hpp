// Linux control groups for the process driver: one group per instance, holding everything the
// instance starts, with its memory, CPU and process limits.
//
// Layout: <parent>/berth/<label>/<project>/<name>-<n>, where <label> names berth's data dir
// (12 hex of the SHA-256 of its path: two berths on one host never touch each other's groups)
// and <name> is the instance's env and release ("production-<hash>", "preview", "build").
// - cgroup v1 (a hierarchy per controller, as on these machines): <parent> is berth's own group
//   in each of the memory, cpu, cpuacct and pids hierarchies, so whatever limits berth itself
//   has still hold for its apps.
// - cgroup v2 (one unified hierarchy): used when it has the memory, cpu and pids controllers;
//   <parent> is its root, or a group delegated to berth's user (--cgroup-root DIR).
// Nothing here is an actor; every verb is a handful of small file operations on cgroupfs.
// Thread-safety: a cgroup_tree is immutable after open(); its verbs may run concurrently,
// except that sweep() must not run between a create() and the moment the new group's first
// process has joined it (an empty new group looks like one whose instance ended): the caller
// serialises them (process_runtime holds a lock across create + start).
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "runtime/driver.hpp"
#include "runtime/status.hpp"

namespace berth {

// One instance's group: its folder in each hierarchy (v2: one folder). Empty: no group.
struct cgroup {
  std::vector<std::string> dirs;
  bool v2 = false;
  bool empty() const { return dirs.empty(); }
};

class cgroup_tree {
 public:
  // Finds the hierarchies with the memory, cpu(acct) and pids controllers and makes berth's
  // subtree for `data_dir_label`. `root`: "auto" (v2 at /sys/fs/cgroup when it has the
  // controllers, else v1), "off" or "" (no limits), or the folder of a cgroup v2 group
  // delegated to berth. Never fails: a host where groups cannot be made gives a tree whose
  // unavailable() says why (not root, no controllers, not a cgroup folder, ...).
  static std::shared_ptr<const cgroup_tree> open(const std::string& root, const std::string& data_dir_label);

  const std::string& unavailable() const { return unavailable_; }  // "" = groups can be made
  // "cgroup v1" | "cgroup v2" | "none"
  std::string version() const;
  // berth's subtree: one folder per hierarchy (empty when unavailable).
  const std::vector<std::string>& subtree() const { return subtree_; }

  // Makes a new, empty group for an instance of `project` and writes `limits` into it (0
  // fields: not limited). Errors: io_error when groups are unavailable here, or when a folder
  // or a limit cannot be written (then nothing is left behind).
  status create(const std::string& project, const std::string& name, const resource_limits& limits,
                cgroup* out) const;
  // The group of berth's subtree that the live process `pid` is in; false when it is in none
  // (or has gone). How an instance adopted after a restart finds its group again.
  bool find(int pid, cgroup* out) const;
  // Removes every group of the subtree that has no process left (an instance that ended while
  // berth was down, or whose last process outlived berth's look at it), then the project
  // folders and berth's subtree when left empty (create() makes them again); never a folder
  // in `keep` (groups whose end the caller has yet to read).
  // Returns how many instance groups it removed.
  size_t sweep(const std::set<std::string>& keep = {}) const;
  // The same for the subtrees of other data dirs (berths that were deleted, test runs), but
  // only groups and folders unchanged for `older_than`: another berth's new group waits for
  // its first process for milliseconds, never minutes. Returns how many groups it removed.
  size_t sweep_abandoned(std::chrono::seconds older_than) const;

 private:
  std::string unavailable_;
  bool v2_ = false;
  std::vector<std::string> subtree_;  // <parent>/berth/<label> per hierarchy
};

// The files the child writes "0" into, between fork and exec, to join the group.
std::vector<std::string> join_files(const cgroup& g);
// The group the live process `pid` is in, whoever made it (a container engine's, for usage):
// for v1 its memory, cpuacct and pids folders, for v2 its one folder; only when the group's
// path contains `must_contain` (a container id: a reused pid names no one's group). False when
// the process is gone or its group does not match.
bool group_of_process(int pid, const std::string& must_contain, cgroup* out);
// Memory charge, CPU seconds and process count of the group now, and the limits in force.
// Errors: not_found (the group is gone), io_error.
status read_usage(const cgroup& g, resource_usage* out);
// How often the kernel's OOM killer killed a process of the group (0 when unknown).
uint64_t oom_kills(const cgroup& g);
// SIGKILLs every process in the group until none is left (bounded: about 2 s; a fork bomb is
// held by the pids limit). Ok when the group is empty or gone.
status kill_all(const cgroup& g);
// Removes the group. Errors: io_error (processes remain in it). Ok when already gone.
status remove_group(const cgroup& g);

}  // namespace berth
