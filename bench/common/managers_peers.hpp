// The peers bench_managers measures berth against, each driven through its own CLI as a user
// drives it, each with all of its state in one folder of the bench's temp dir:
//   pm2         (npm, pinned; scripts/install-bench-deps.sh) with PM2_HOME=<dir>/pm2-home: one
//               ecosystem file per app set, `pm2 start FILE`, `pm2 delete FILE`, `pm2 reload NAME`.
//   supervisord (Debian `supervisor`) run in the foreground by the bench (-n): one config with a
//               [program:x] per app (autostart=false) and a [group:g] per app set,
//               `supervisorctl start g:*` / `stop g:*`.
// shutdown() stops the daemon and waits for it; the session's cleanup kills whatever is left
// with its cwd in the temp dir (the apps, and the daemons, whose cwd is their folder).
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace berth::bench {

// One app as a manager's config names it.
struct managed_app {
  std::string name, dir;          // dir: its working directory (the app folder)
  std::vector<std::string> argv;  // argv[0] relative to dir or absolute
  uint16_t port = 0;
};

class pm2_manager {
 public:
  // `pm2` is the CLI (node_modules/.bin/pm2); `dir` holds PM2_HOME and the ecosystem files.
  pm2_manager(std::string pm2, std::string dir);
  // Starts the daemon (God) with `pm2 ping`; the error text, "" when it runs.
  std::string start_daemon();
  // Writes <dir>/<set>.json: every app in fork mode (interpreter "none" for a binary), or in
  // cluster mode with `instances` workers (node scripts only).
  std::string write_ecosystem(const std::string& set, const std::vector<managed_app>& apps,
                              bool cluster = false, int instances = 1);
  // `pm2 start FILE` as a child of ours (not waited for): its pid, -1 on error.
  pid_t start_async(const std::string& ecosystem);
  // Runs `pm2 <args>` to its end (limit 120 s): its exit status (-1: did not end).
  int run(const std::vector<std::string>& args, std::string* output = nullptr);
  pid_t daemon_pid() const;  // from PM2_HOME/pm2.pid; -1 when not running
  std::string log_tail() const;
  void shutdown();  // `pm2 kill`, then SIGKILL of the daemon if it is still there

 private:
  std::string pm2_, dir_, home_;
};

class supervisord_manager {
 public:
  // `supervisord`/`supervisorctl` are the programs; `dir` holds the config, socket and logs.
  supervisord_manager(std::string supervisord, std::string supervisorctl, std::string dir);
  // Writes the config for the app sets, one group each (programs: autostart=false,
  // autorestart=true, supervisord's defaults otherwise, e.g. startsecs=1) and starts
  // supervisord -n; the error text, "" when its socket answers.
  std::string start(const std::map<std::string, std::vector<managed_app>>& groups);
  // `supervisorctl start <group>:*` as a child of ours (not waited for): its pid, -1 on error.
  pid_t start_group_async(const std::string& group);
  int ctl(const std::vector<std::string>& args, std::string* output = nullptr);
  pid_t daemon_pid() const { return pid_; }
  std::string log_tail() const;
  void shutdown();  // `supervisorctl shutdown`, then SIGKILL if it has not ended in 10 s

 private:
  std::string supervisord_, supervisorctl_, dir_, conf_;
  pid_t pid_ = -1;
};

}  // namespace berth::bench
