// What bench_managers needs around the apps, whoever manages them: the app's files in a folder,
// the poller that says when every app answers HTTP, the process listening on a port, RSS, and
// the bare fork/exec start (the harness itself as the manager).
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace berth::bench {

using steady_clock = std::chrono::steady_clock;

enum class app_kind { native, python, node };
const char* kind_name(app_kind k);  // "native", "python", "node" (the rows' `app`)

// The interpreters and the native binary the apps run with (all visible in berth's sandbox).
struct app_programs {
  std::string tiny_http;  // bench/apps/tiny_http, copied into each app folder
  std::string python = "/usr/bin/python3";
  std::string node = "/usr/bin/node";
};

// Writes the app of kind `k` into `dir` (created): its program or script and VERSION holding
// `version`. Returns the argv that runs it with `dir` as working directory (relative script).
std::vector<std::string> write_app(app_kind k, const app_programs& progs, const std::string& dir,
                                   const std::string& version);

// One GET /health on a fresh connection to 127.0.0.1:port: true on 200 within `timeout`.
bool answers(uint16_t port, std::chrono::milliseconds timeout = std::chrono::milliseconds(500));

// Polls every port (fresh connections, a few threads) until each has answered once; seconds
// from `t0` to the last first answer, or NAN when `deadline` passes first.
double wait_all_answer(const std::vector<uint16_t>& ports, steady_clock::time_point t0,
                       steady_clock::time_point deadline);
// Polls until no port answers any more (after a stop); false when `deadline` passes first.
bool wait_none_answer(const std::vector<uint16_t>& ports, steady_clock::time_point deadline);

// `count` consecutive ports in [lo, hi) that are free to bind on 127.0.0.1 now, starting at a
// random offset; empty when there are none. Kept below the ephemeral range by the callers so
// the poller's own connections never hold them.
std::vector<uint16_t> free_port_block(int count, uint16_t lo, uint16_t hi, uint32_t random);

// The process with a listening TCP socket on 127.0.0.1:port (or 0.0.0.0): -1 when none.
// Reads /proc/net/tcp and every process's fds (root sees all, sandboxed apps included).
pid_t listener_pid(uint16_t port);
// VmRSS of the process in MB (NAN when it is gone).
double rss_mb(pid_t pid);

// fork + execve of `argv` in `cwd` with our environment plus `env`, stdout/stderr to `log`;
// in its own session (and process group), dies with us. -1 on error (message in *error).
pid_t spawn_in(const std::vector<std::string>& argv, const std::string& cwd,
               const std::map<std::string, std::string>& env, const std::string& log, std::string* error);
// Waits for `pid` (a child of ours) up to `limit`; its exit status, or -1 (then it is SIGKILLed).
int wait_child(pid_t pid, std::chrono::milliseconds limit);

// The harness as the manager: fork/exec of each app, nothing else.
class bare_apps {
 public:
  // Starts one app per (dir, port) with PORT/HOST set; -1 entries for the ones that failed.
  void start(const std::vector<std::string>& dirs, const std::vector<std::vector<std::string>>& argvs,
             const std::vector<uint16_t>& ports);
  void stop();  // SIGKILL and reap every app started here
  ~bare_apps() { stop(); }

 private:
  std::vector<pid_t> pids_;
};

// fork/exec of one app until it answers /health: its own boot, in ms (NAN on timeout).
double boot_ms(const std::string& dir, const std::vector<std::string>& argv, uint16_t port);

}  // namespace berth::bench
