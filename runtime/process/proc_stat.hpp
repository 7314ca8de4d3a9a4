// Internal to the process driver: what /proc says about a process, its group and its folder.
// Blocking only on /proc reads; no state.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runtime/process/process_driver.hpp"

namespace berth::detail {

// The fields of /proc/<pid>/stat the driver uses.
struct proc_stat {
  char state = '?';
  int pgrp = 0;             // field 5
  uint64_t utime = 0;       // field 14, clock ticks
  uint64_t stime = 0;       // field 15, clock ticks
  uint64_t start_time = 0;  // field 22, clock ticks since boot
  uint64_t rss_pages = 0;   // field 24
  int exit_code = -1;       // field 52, raw wait status; -1 if not shown
};

std::optional<proc_stat> read_proc_stat(int pid);

// Zombie or dead: the process has ended, whoever reaps it.
bool is_dead_state(char s);

// Calls fn(pid) for every numeric entry of /proc.
void for_each_pid(const std::function<void(int)>& fn);

// Live (non-zombie) processes whose process group is pgid.
std::vector<int> scan_live_members(int pgid);
bool is_live_member(int pid, int pgid);

// Whether the group still has live members. `known` caches the members seen alive, so that
// /proc is scanned only once they are all gone.
bool group_has_live_members(int pgid, std::vector<int>& known);

// The working directory of pid with a " (deleted)" suffix stripped; "" when unreadable.
std::string read_cwd(int pid);
// True when `path` is `root` or inside it (both absolute, canonical).
bool path_is_under(const std::string& root, const std::string& path);

// pidfd_open(2); -1 where unavailable.
int pidfd_open(int pid);
void close_fd(int fd);

// A raw wait status as process_info (status exited).
void fill_from_wait_status(int ws, process_info* info);

// What /proc says about the process of h (not our child): running, exited (a zombie, with
// its code when shown) or not_found.
process_info inspect_via_proc(const process_handle& h);

}  // namespace berth::detail
