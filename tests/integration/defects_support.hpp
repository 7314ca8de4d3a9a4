// Small helpers for test_runtime_defects.cpp and test_compat.cpp: finding programs (Caddy,
// python3, tar), the whole event log in global order (`berth audit replay --json`), a berth
// process's thread count at rest, and running a program to completion or in its own session.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/integration/harness.hpp"

namespace berth::it {

// The absolute path of `name` on PATH (then /usr/bin, /bin, /usr/local/bin); "" when missing.
std::string find_program(const std::string& name);
inline std::string caddy_binary() { return find_program("caddy"); }

#define SKIP_WITHOUT_CADDY()                                     \
  if (::berth::it::caddy_binary().empty()) {                     \
    WARN("caddy is not installed: proxy mode test skipped");     \
    return;                                                      \
  }

// `berth serve` flags for proxy mode with its own Caddy and shared listener on `http_port`.
std::vector<std::string> proxy_args(uint16_t http_port);

// Every event of the log in global (seq) order, read offline by `berth audit replay --json`:
// objects with seq, stream, type and data (an object). Throws when the replay fails.
std::vector<json> replay_events(const std::string& data_dir);
// Index in `events` of the first event after index `from` that `pred` accepts; -1 if none.
template <class Pred>
long find_event(const std::vector<json>& events, long from, Pred pred) {
  for (size_t i = from < 0 ? 0 : static_cast<size_t>(from + 1); i < events.size(); ++i)
    if (pred(events[i])) return static_cast<long>(i);
  return -1;
}
std::string describe_events(const std::vector<json>& events, const std::vector<std::string>& streams);

// Entries in /proc/<pid>/task (-1 when the process is gone).
int thread_count(pid_t pid);
// The thread count once transient workers have ended: polls until the lowest count seen has
// not dropped for `settle` (bounded by `limit`) and returns that lowest count.
int threads_at_rest(pid_t pid, std::chrono::milliseconds settle = std::chrono::milliseconds(2500),
                    std::chrono::milliseconds limit = std::chrono::seconds(30));

// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); 0 when unreadable.
uint64_t start_time_of(pid_t pid);

// Runs a program (argv[0] an absolute path) to completion; its exit code, -1 on timeout.
int run_program(const std::vector<std::string>& argv,
                std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A program started in its own session (so its pid is its process group), in `cwd`, with
// exactly `env`, output to `log`. Killed (the whole group) and reaped on destruction.
class session_process {
 public:
  session_process() = default;
  ~session_process();
  session_process(const session_process&) = delete;
  session_process& operator=(const session_process&) = delete;
  void start(const std::vector<std::string>& argv, const env_list& env, const std::string& cwd,
             const std::string& log);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

}  // namespace berth::it
