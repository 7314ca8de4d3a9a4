#include "bench/common/managers_switch.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <thread>

#include <httplib.h>

#include "bench/common/managers_apps.hpp"
#include "tests/integration/traffic_support.hpp"

namespace berth::bench {

using namespace std::chrono_literals;
namespace it = berth::it;

namespace {

const char* failed_fig = "failed requests while switching production under load";
const char* p99_fig = "p99 while switching production under load";

double nearest_rank(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t r = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(std::max<size_t>(r, 1), v.size()) - 1];
}

// `switch_once(i)` switches to version i ("" or what failed) while the clients run on `port`.
void measure(session& s, const std::string& subject, uint16_t port, int run, int switches,
             const std::function<std::string(int)>& switch_once, figure_table& table) {
  it::target t{"127.0.0.1", port, "", {}};
  std::vector<std::unique_ptr<it::traffic_client>> clients;
  for (int i = 0; i < 2; ++i) {
    clients.push_back(it::new_connection_client(t, "/", 2ms));
    clients.push_back(it::keepalive_get_client(t, "/", 2ms));
  }
  for (auto& c : clients) c->start();
  std::this_thread::sleep_for(300ms);
  for (int i = 0; i < switches; ++i)
    if (auto e = switch_once(run * switches + i + 1); !e.empty()) {
      for (auto& c : clients) c->stop();
      s.fail(subject + " switch: " + e);
    }
  std::this_thread::sleep_for(300ms);
  uint64_t failed = 0, requests = 0, closes = 0;
  std::vector<double> latencies;
  std::string first_error;
  for (auto& c : clients) {
    auto r = c->stop();
    failed += r.failed;
    closes += r.unexpected_closes;
    requests += r.ok + r.failed;
    latencies.insert(latencies.end(), r.latencies_ms.begin(), r.latencies_ms.end());
    if (first_error.empty() && !r.errors.empty()) first_error = r.errors.front();
  }
  table.add(failed_fig, subject, "node", "count", static_cast<double>(failed), subject == "berth" ? "== 0 count" : "");
  table.add(p99_fig, subject, "node", "ms", nearest_rank(latencies, 0.99));
  // The count depends on how long a switch takes: say how many requests each run sent, and how
  // many connections the server closed unannounced (idle ones are not failures).
  auto& row = table.row(failed_fig, subject, "node", "count");
  row.notes += std::string(row.notes.empty() ? "requests / unannounced closes per run: " : ", ") +
               std::to_string(requests) + " / " + std::to_string(closes);
  std::printf("  switch run %d %-5s %d switches: %llu of %llu requests failed, p99 %.2f ms%s%s\n", run + 1,
              subject.c_str(), switches, static_cast<unsigned long long>(failed),
              static_cast<unsigned long long>(requests), nearest_rank(latencies, 0.99),
              first_error.empty() ? "" : "; first error: ", first_error.c_str());
  std::fflush(stdout);
}

// Waits until GET / on `port` answers "release <version>" (the switch has reached users).
bool serves(uint16_t port, const std::string& version) {
  auto until = steady_clock::now() + 20s;
  while (steady_clock::now() < until) {
    httplib::Client cli("127.0.0.1", port);
    cli.set_connection_timeout(0, 300000);
    cli.set_read_timeout(1, 0);
    auto r = cli.Get("/");
    if (r && r->status == 200 && r->body == "release " + version + "\n") return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace

void run_switch(session& s, berth_manager& berth, pm2_manager& pm2, const std::string& dir, uint16_t pm2_port,
                const switch_params& p, figure_table& table) {
  app_programs progs;
  progs.node = p.node;
  const std::string berth_src = dir + "/berth-node", pm2_dir = dir + "/pm2-node";
  write_app(app_kind::node, progs, berth_src, "v0");
  auto argv = write_app(app_kind::node, progs, pm2_dir, "v0");

  const std::string name = "node-switch";
  uint16_t berth_port = berth.create_node_production(name, berth_src, p.node);
  if (auto e = berth.deploy(name); !e.empty()) s.fail("berth first deploy: " + e);
  if (!serves(berth_port, "v0")) s.fail("berth's node app does not serve v0 on its stable port");

  std::string eco = pm2.write_ecosystem("switch", {{name, pm2_dir, argv, pm2_port}}, true, 1);
  std::string out;
  if (pm2.run({"start", eco}, &out) != 0) s.fail("pm2 start (cluster): " + out, pm2.log_tail());
  if (!serves(pm2_port, "v0")) s.fail("pm2's node app does not serve v0", pm2.log_tail());

  auto set_version = [](const std::string& d, int v) { std::ofstream(d + "/VERSION") << "v" << v << "\n"; };
  auto berth_switch = [&](int v) {
    set_version(berth_src, v);
    if (auto e = berth.deploy(name); !e.empty()) return e;
    return serves(berth_port, "v" + std::to_string(v)) ? std::string() : "v" + std::to_string(v) + " not served";
  };
  auto pm2_switch = [&](int v) {
    set_version(pm2_dir, v);
    std::string o;
    if (pm2.run({"reload", name}, &o) != 0) return "pm2 reload: " + o;
    return serves(pm2_port, "v" + std::to_string(v)) ? std::string() : "v" + std::to_string(v) + " not served";
  };
  for (int run = 0; run < p.runs; ++run) {
    if (run % 2 == 0) {
      measure(s, "berth", berth_port, run, p.switches, berth_switch, table);
      measure(s, "pm2", pm2_port, run, p.switches, pm2_switch, table);
    } else {
      measure(s, "pm2", pm2_port, run, p.switches, pm2_switch, table);
      measure(s, "berth", berth_port, run, p.switches, berth_switch, table);
    }
  }
  auto [code, health] = berth.api().get("/health");
  std::string engine = code == 200 && health.contains("proxy") ? health["proxy"].value("engine", "?") : "?";
  table.note(failed_fig, "berth", "node", "proxy mode deploys (router: " + engine + ", berth's default; --drain-ms 1000), 2 new-connection + 2 kept-alive GET clients every 2 ms, never resending");
  table.note(failed_fig, "pm2", "node", "pm2 reload of the same node app in cluster mode (1 instance), pm2's best case");
  pm2.run({"delete", eco});
}

}  // namespace berth::bench
