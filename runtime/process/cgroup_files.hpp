// Internal to the cgroup code (runtime/process/cgroup*.cpp): small reads and writes of
// cgroupfs files. Every function is a few syscalls; none keeps state.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/process/cgroup.hpp"
#include "runtime/status.hpp"

namespace berth::detail {

constexpr long kCpuPeriodUs = 100000;  // the CFS period berth writes (100 ms)

// The whole (small) file; "" when unreadable (*ok = false).
std::string read_text(const std::string& path, bool* ok = nullptr);
// One write(2) of `value`. Errors: io_error naming the file and what the kernel said.
status write_text(const std::string& path, const std::string& value);
// A number from a cgroup file; "max" (and v1's near-2^63 "unlimited") reads as 0 = none.
uint64_t read_number(const std::string& path);
// The value of `key` in a flat-keyed file ("oom_kill 3\n…"); 0 when missing.
uint64_t read_key(const std::string& path, const std::string& key);
// The folder is on a cgroup v2 filesystem.
bool is_cgroup2(const std::string& dir);
// mkdir, ok when it exists. v2: the parent first hands its children the memory, cpu and pids
// controllers (cgroup.subtree_control).
status make_dir(const std::string& dir, bool v2);
// Writes the limits into a new group (0 fields: left unlimited). Errors: io_error.
status write_limits(const cgroup& g, const resource_limits& l);
// The pids in the group now.
std::vector<int> members(const cgroup& g);

}  // namespace berth::detail
