// The berth under test in a benchmark, and the projects it deploys. One process-wide session
// per benchmark, shared with its signal and time-limit threads: cleanup() kills berth, then
// every process whose cwd is in the temp dir (the releases and Caddy outlive berth by design),
// then removes the dir. Used by bench_deploy (one berth) and bench_switch (one per mode).
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/common/berth_bench.hpp"

namespace berth::bench {

class session {
 public:
  explicit session(std::string name) : name_(std::move(name)) {}
  // Blocks SIGINT/SIGTERM/SIGHUP (call before any other thread exists), then cleans up and
  // exits 130 on one of them, or exits 3 once `limit` has passed.
  void guard(std::chrono::seconds limit);
  // A fresh "<parent>/berth-<name>-XXXXXX" for the next berth (the last one is cleaned up
  // first); kept after cleanup when `keep`. Exits if the process is already ending.
  std::string open_dir(const std::string& parent, bool keep);
  // Starts berth (`args` from the binary on) with its log in <dir>/server.log and waits up to
  // 20 s until GET /health answers 200 and `ready(health body)` holds; fail() otherwise.
  void start_berth(const std::vector<std::string>& args, api_client& api,
                   const std::function<bool(const nlohmann::json&)>& ready = {});
  // Safe from any thread; a no-op when nothing runs. final_cleanup() also refuses new dirs.
  void cleanup();
  void final_cleanup();
  // SIGKILLs berth alone (its releases and proxy go on, as after a crash) and reaps it; the
  // temp dir stays for a start_berth with the same data dir. No-op when none runs.
  void kill_berth();
  // The running berth's pid (for /proc figures); -1 when none runs.
  pid_t berth_pid();
  // Prints what failed and berth's log tail, cleans up, exits 1 (without static destructors:
  // load threads may still run).
  [[noreturn]] void fail(const std::string& what, const std::string& extra = "");
  std::string server_log_tail(size_t max = 4000);

 private:
  void cleanup_locked();
  std::string name_;
  std::mutex mu_;
  bool final_ = false;
  std::string dir_;  // canonical; "" when no berth runs
  pid_t berth_ = -1;
  bool keep_ = false;
};

// A project the benchmark deploys: its source folder and what its release serves.
struct project_setup {
  std::string name, src;
  uint16_t port = 0;  // stable production port
  std::function<std::string(const std::string& version)> set_version;  // writes the source
  std::string version;  // what the current release serves
};

// bench-tiny (bench/apps/tiny_http, build = install VERSION into dist/) and bench-python
// (bench/apps/release_server.py on `python`), created in berth with fast health checks
// (10 ms interval) and keep 3, their source at version "<nonce>-0". Not deployed yet.
project_setup create_tiny(session& s, api_client& api, const std::string& dir, const std::string& tiny_bin,
                          const std::string& nonce);
project_setup create_python(session& s, api_client& api, const std::string& dir, const std::string& python,
                            const std::string& nonce);

// A random 200-port window of the production (8000-9799) and preview (4000-7799) ranges, so
// runs and test servers on one host do not collide: "--production-ports", "lo-hi", ….
std::vector<std::string> port_window_args(uint32_t random);

}  // namespace berth::bench
