// Helpers for the production deploy tests (test_deploy.cpp): the sample site app
// (tests/apps/site), deployment polling, SSE reading, folder and /proc inspection.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.hpp"

namespace berth::it {

// A copy of tests/apps/site (build.py, server.py) in <tmp>/<dir> with VERSION and MODE set;
// returns its absolute path.
std::string make_site(const temp_dir& tmp, const std::string& dir, const std::string& version,
                      const std::string& mode = "normal");
// Rewrites one of the site's option files (VERSION, MODE, BUILD_SLEEP).
void set_site(const std::string& site, const std::string& file, const std::string& value);

// A manifest for the site: preview from the source, build into dist/, production from the
// release folder with short health timeouts.
json site_manifest(const std::string& name, const std::string& src, int keep = 5,
                   int health_timeout_s = 4);

// Server options every deploy test uses: a short stop grace, and production and preview port
// windows picked at random, so that test servers running at the same time on this host do not
// all reach for the same ports (each berth only knows its own leases).
server_options deploy_server_options(std::vector<std::string> extra = {});

struct fetch_result {
  int status = -1;  // -1: no answer
  std::string body;
  std::string error;
  std::string describe() const;
};
// GET on 127.0.0.1:port with a fresh connection and short timeouts; `host` (when given) is
// sent as the Host header, as a browser asking for <name>.<domain_suffix> would.
fetch_result fetch(uint16_t port, const std::string& path = "/",
                   std::chrono::milliseconds timeout = std::chrono::milliseconds(1500),
                   const std::string& host = "");

bool is_terminal_status(const std::string& status);
// Polls GET /api/deployments/{id} (or `prefix` + id) every 50 ms until its status is terminal
// or `timeout` passes; returns the last detail (its status tells which). A non-200 answer is
// returned as {"_http": describe()}.
json wait_done(client& api, const std::string& id,
               std::chrono::milliseconds timeout = std::chrono::seconds(60),
               const std::string& prefix = "/api/deployments/");
// Polls the detail until `pred(detail)` holds; returns the last detail.
template <class Pred>
json wait_detail(client& api, const std::string& id, Pred pred, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  json last;
  for (;;) {
    auto r = api.get("/api/deployments/" + id);
    last = r.status == 200 ? r.body : json{{"_http", r.describe()}};
    if (r.status == 200 && pred(last)) return last;
    if (std::chrono::steady_clock::now() >= until) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}
// The phase names in detail.phases, in order.
std::vector<std::string> phase_names(const json& detail);
std::string brief(const json& detail);  // id/status/phase/error/message/last log lines

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return f();
}

// Names of the 12-hex release folders in <production dir>.
std::set<std::string> release_dirs(const std::string& production_dir);
// Paths (relative to `root`) of every entry whose name contains ".tmp-", recursively.
std::vector<std::string> tmp_leftovers(const std::string& root);
// The file name `production/current` points at ("" when it is not a symlink).
std::string current_link(const std::string& production_dir);


// Polls a port every `every` with fresh connections, from a thread, and records every answer
// whose body is not `expected` (including no answer at all).
class port_watch {
 public:
  port_watch(uint16_t port, std::string expected,
             std::chrono::milliseconds every = std::chrono::milliseconds(20));
  ~port_watch();
  void stop();
  size_t polls() const { return polls_.load(); }
  std::vector<std::string> bad() const;  // "t+<ms>: <what>" per bad answer

 private:
  uint16_t port_;
  std::string expected_;
  std::chrono::milliseconds every_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> polls_{0};
  mutable std::mutex mu_;
  std::vector<std::string> bad_;
  std::thread thread_;
};

// One SSE stream read to its end.
struct sse_event {
  std::string event;
  std::string data;  // raw data (lines joined with '\n')
  json body;         // parsed data (discarded when not JSON)
};
struct sse_result {
  int status = -1;
  std::string error;         // transport error, or "deadline" when we stopped reading
  std::string content_type;  // the Content-Type header exactly as sent
  std::vector<sse_event> events;
  bool ended = false;  // the server closed the stream on its own
  double seconds = 0;  // wall time until the stream ended
  std::string describe() const;
};
// GET `path` and read the stream until the server ends it or `deadline` passes.
sse_result read_sse(uint16_t port, const std::string& path,
                    std::chrono::milliseconds deadline = std::chrono::seconds(60));

}  // namespace berth::it
