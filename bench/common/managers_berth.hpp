// berth as bench_managers drives it: a real `berth serve` (sandbox on, as a user runs it) in the
// bench session's temp dir, its apps as previews (start/stop over the API, `parallel` calls
// at a time) and one production project deployed in proxy mode for the switch figure.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/common/bench_session.hpp"
#include "bench/common/berth_bench.hpp"
#include "bench/common/managers_peers.hpp"

namespace berth::bench {

class berth_manager {
 public:
  // `berth` is the binary; its data dir is <dir>/<data_name>.
  berth_manager(session& s, std::string berth, std::string dir);
  // Starts `berth serve` on a free port with `extra` flags (after the data dir), a random
  // 200-port window for previews and production, --stop-grace-ms 1000; fails the session
  // when it does not get ready (with a proxy: until /health says the proxy runs).
  void start(const std::string& data_name, const std::vector<std::string>& extra, bool proxy);
  void kill();  // SIGKILL (before a restart with other flags); its apps must be stopped first
  pid_t daemon_pid() const;  // the process listening on berth's API port
  api_client& api() { return *api_; }

  // Creates one project per app (source = the app folder, preview = its argv, health /health
  // every 10 ms, the smallest the manifest allows); fills each app's port with the preview
  // port berth leased. Not timed.
  void create_previews(std::vector<managed_app>& apps);
  // POST /api/projects/{name}/preview/{action} for every app, `parallel` at a time; "" when
  // every call answered 200, else the first failure.
  std::string preview_all(const std::vector<managed_app>& apps, const std::string& action, int parallel);

  // DELETE /api/projects/{name} for every app (each one's preview stopped); "" or the first failure.
  std::string delete_all(const std::vector<managed_app>& apps);

  // A project whose release is `app_dir`'s node app (build = install VERSION server.js into
  // dist/, production = node dist/server.js, health /health every 10 ms, min_healthy_s 0).
  // Returns its stable port. Not deployed.
  uint16_t create_node_production(const std::string& name, const std::string& app_dir, const std::string& node);
  // POST deployments and waits (90 s at most) until it completed; "" or what went wrong.
  std::string deploy(const std::string& name);

 private:
  session& s_;
  std::string berth_, dir_;
  uint16_t api_port_ = 0;
  std::string token_;
  std::unique_ptr<api_client> api_;
};

}  // namespace berth::bench
