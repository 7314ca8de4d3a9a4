// What integration tests and benchmarks share: small file helpers, and finding processes by
// their working directory (every app berth starts runs inside the data dir, so this proves
// nothing was left behind, and cleans up).
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace berth::it {

// Reads a whole file ("" when missing).
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);

struct proc_info {
  pid_t pid = 0;
  std::string cwd, cmdline;
};
// Every live process whose cwd is `dir` or inside it.
std::vector<proc_info> procs_in(const std::string& dir);
std::string describe(const std::vector<proc_info>& procs);
// SIGKILLs (by pid) every process whose cwd is inside `dir`, until none is left (bounded).
void kill_processes_in(const std::string& dir);

}  // namespace berth::it
