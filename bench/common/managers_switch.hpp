// bench_managers' switch under load: what clients of one node app see while its production is
// switched, berth (proxy mode: deploys of a new release) against pm2 (`pm2 reload` of the app
// in cluster mode, pm2's zero-downtime path and its best case). The same app
// (bench/apps/tiny_node.js), the same clients: 2 new-connection GET and 2 kept-alive GET
// clients (tests/integration/traffic_support, never resending), each a request every 2 ms.
#pragma once
#include <cstdint>
#include <string>

#include "bench/common/bench_session.hpp"
#include "bench/common/managers_berth.hpp"
#include "bench/common/managers_peers.hpp"
#include "bench/common/managers_report.hpp"

namespace berth::bench {

struct switch_params {
  int runs = 5;      // runs alternate berth / pm2
  int switches = 3;  // deploys (berth) or reloads (pm2) per run, each with a new VERSION
  std::string node = "/usr/bin/node";
};

// `berth` must run in proxy mode and `pm2`'s daemon must run; `dir` is made for the apps and
// `pm2_port` is a free port for pm2's app. Adds per run and subject the rows "failed requests
// while switching production under load" (count, all clients) and "p99 while switching
// production under load" (ms, the ok requests of all clients). Fails the session on an error.
void run_switch(session& s, berth_manager& berth, pm2_manager& pm2, const std::string& dir, uint16_t pm2_port,
                const switch_params& p, figure_table& table);

}  // namespace berth::bench
