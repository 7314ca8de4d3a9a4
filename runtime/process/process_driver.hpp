// The embedded default runtime driver: starts, watches and stops OS processes (Linux).
//
// A handful of verbs in the spirit of LevelDB. No actor code: callers run these (blocking)
// calls off CAF's scheduler threads. All methods are thread-safe; several process_driver
// objects may coexist and share one process-wide table of the children they started.
//
// - start: fork + setsid + execve. argv is never passed through a shell; argv[0] without a
//   '/' is looked up in the child's PATH (as execvp does). An exec failure (ENOENT, EACCES,
//   a bad cwd, ...) is returned as an error status; no process is left behind.
// - Every started process leads its own session and process group (pgid == pid), so stop()
//   reaches the whole tree: SIGTERM to the group, up to `grace`, then SIGKILL to the group.
// - Children started here are reaped by one background reaper thread (pidfd + epoll, or a
//   10 ms sweep where pidfds are unavailable) so they never linger as zombies; their exit
//   codes are kept in a bounded table. The driver only ever waitpid()s processes it
//   started (and, in stop(), members of their process groups) and installs no signal
//   handler. Processes adopted after a berth restart (not our children) are checked
//   through /proc (and a pidfd, to wait); their exit code is reported when still visible
//   as a zombie.
// - Exit watches run their callback on that same reaper thread (no thread per watch), one
//   at a time: a callback should be short, since reaping waits for it.
// - A process_handle identifies a process across berth restarts: pid + start time (field 22
//   of /proc/<pid>/stat). A reused pid (different start time) is never signalled.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "runtime/status.hpp"

namespace berth {

struct process_spec {
  // argv[0] is resolved through PATH when it has no '/'. Never through a shell.
  std::vector<std::string> argv;
  // Working directory of the child; empty = berth's own.
  std::string cwd;
  // The child's environment is minimal: the variables named by inherited_env_names() are
  // copied from berth's environment (when set), then every entry of `env` is set on top
  // (overriding). PATH defaults to /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  // when neither provides one. PATH given here is also the one used to resolve argv[0].
  std::map<std::string, std::string> env;
  // Appended to (O_APPEND|O_CREAT, 0644); may be the same file; empty = /dev/null.
  // The directories must exist. stdin is always /dev/null.
  std::string stdout_path, stderr_path;
  // cgroup.procs files (runtime/process/cgroup.hpp) the child joins between fork and exec, so
  // that the program never runs outside its group; one that cannot be joined fails the start.
  std::vector<std::string> cgroup_join;
  // > 0 (with stdout_path == stderr_path): the output goes through a pipe to berth-log-writer
  // (runtime/logs/log_writer.hpp; `berth log-writer` without it), started in the child's session and process group, which rotates the
  // file by size, keeping at most log_files files (runtime/logs/rotating_file.hpp).
  uint64_t log_max_bytes = 0;
  int log_files = 5;
};

// What berth persists in events to recognise its own processes after a restart.
struct process_handle {
  int pid = 0;
  uint64_t start_time = 0;  // field 22 of /proc/<pid>/stat (clock ticks since boot)
  int pgid = 0;             // == pid for processes started by start(); 0 = use pid
};

enum class process_status {
  running,   // alive, and the pid still belongs to the process of the handle
  exited,    // terminated; exit_code / term_signal say how when known
  not_found  // gone (already reaped by someone else) or the pid now belongs to another process
};
const char* to_string(process_status s);

struct process_info {
  process_status status = process_status::not_found;
  int exit_code = -1;   // exited normally: 0-255; -1 if killed by a signal or unknown
  int term_signal = 0;  // killed by a signal: its number; else 0
};

class process_driver {
 public:
  // Starts spec.argv. On success fills *out (pid, start time, pgid == pid).
  // Errors: invalid_argument (empty argv, bad env name), not_found (program or cwd missing),
  // io_error (log file cannot be opened, permission denied, fork failure, ...).
  status start(const process_spec& spec, process_handle* out);

  // SIGTERM to the whole process group (and to the leader should it have left it), waits
  // up to `grace` for every live member to be gone, then SIGKILLs the group and waits
  // (bounded, 5 s) again. Reaps our own child. Ok if the process is already gone or the
  // pid was reused by another process (which is left alone). Members left as zombies of
  // another parent (init reaps them) do not count as alive.
  status stop(const process_handle& h, std::chrono::milliseconds grace);

  // running iff the process exists with the handle's start time and is not a zombie.
  // A reused pid (different start time) gives not_found. Never blocks.
  process_info inspect(const process_handle& h) const;

  // Same pid and same start time: the process of this handle still exists (running, or a
  // zombie not yet reaped).
  bool is_ours(const process_handle& h) const;

  // Blocks until the process exits or `timeout` passes; returns inspect() afterwards
  // (status running on timeout). Our children: woken by the reaper; others: pidfd, or
  // polling /proc every 10 ms where pidfds are unavailable. Never busy-spins.
  process_info wait(const process_handle& h, std::chrono::milliseconds timeout) const;

  // Runs spec to completion (builds): start + wait(timeout). On timeout, stops the group
  // (SIGTERM, `kill_grace`, SIGKILL) and returns io_error("timeout ...") with
  // *timed_out = true. Otherwise returns ok with *exit_code = the exit status, or
  // 128 + signal when killed by a signal. Members of the group still alive after the
  // leader exited (stray background children) are stopped as well.
  // When `cancelled` is given and returns true while it runs, the group is stopped likewise
  // and io_error("cancelled ...") is returned.
  status run(const process_spec& spec, std::chrono::milliseconds timeout, int* exit_code,
             bool* timed_out = nullptr,
             std::chrono::milliseconds kill_grace = std::chrono::milliseconds(1000),
             const std::function<bool()>& cancelled = {});

  // Runs on_exit once, on the reaper thread without any lock held, when the process of h ends
  // (at once, on this thread, if it has or is not ours); a new watch of it replaces this one.
  uint64_t watch(const process_handle& h, std::function<void(const process_info&)> on_exit);
  // Cancels a watch: its callback does not run afterwards (unless it already runs; this does
  // not wait for it). Unknown or fired tokens are ignored.
  void unwatch(uint64_t token);

  // CPU (user + system) and resident memory summed over the live members of h's process
  // group, and how many they are. not_found when the process of h is not running.
  status usage(const process_handle& h, double* cpu_seconds, uint64_t* rss_bytes, uint32_t* processes) const;

  // The last `n` lines of a log file, oldest first, without their '\n' (a final line without
  // '\n' counts). Missing file: empty. Reads backwards, at most 8 MiB from the end.
  static std::vector<std::string> tail(const std::string& path, size_t n);

  // Variables copied from berth's environment into every child (when set).
  static const std::vector<std::string>& inherited_env_names();
};

}  // namespace berth
