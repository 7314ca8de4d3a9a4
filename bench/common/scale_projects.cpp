#include "bench/common/scale_projects.hpp"

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bench/common/scale_probe.hpp"

namespace berth::bench {

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::unique_ptr<httplib::Client> client(const fleet_api& api) {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", api.port);
  c->set_bearer_token_auth(api.token.c_str());
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);
  c->set_connection_timeout(1, 0);
  c->set_read_timeout(30, 0);
  c->set_write_timeout(10, 0);
  return c;
}

double ms_since(steady::time_point t0) { return std::chrono::duration<double, std::milli>(steady::now() - t0).count(); }

}  // namespace

std::string idle_name(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "idle-%05zu", i);
  return buf;
}

double create_idle_projects(session& s, const fleet_api& api, const std::vector<std::string>& names,
                            const std::string& src, int clients) {
  std::vector<std::unique_ptr<httplib::Client>> pool;
  for (int t = 0; t < clients; ++t) pool.push_back(client(api));
  auto t0 = steady::now();
  for_each_concurrently(names.size(), clients, [&](size_t i, int slot) {
    json m = {{"name", names[i]},
              {"source", {{"path", src}}},
              {"preview", {{"command", {"./tiny_http", "VERSION"}}}},
              {"build", {{"command", {"install", "-D", "-m", "755", "-t", "dist", "VERSION", "tiny_http"}},
                         {"artifacts", {"dist"}}}},
              {"production", {{"command", {"dist/tiny_http", "dist/VERSION"}}}}};
    auto body = m.dump();
    auto r = pool[slot]->Post("/api/projects", body, "application/json");
    if (!r) s.fail("POST /api/projects " + names[i] + ": " + httplib::to_string(r.error()));
    if (r->status != 201) s.fail("POST /api/projects " + names[i] + ": HTTP " + std::to_string(r->status), r->body);
  });
  return std::chrono::duration<double>(steady::now() - t0).count();
}

restart_result restart_and_sweep(session& s, const std::vector<std::string>& berth_args, const fleet_api& api,
                                 const std::vector<std::string>& names, int clients, std::chrono::seconds limit) {
  s.kill_berth();
  restart_result out;
  std::mutex mu;
  double last_ms = 0;
  std::atomic<long> retries{0};
  std::atomic<size_t> answered{0};
  std::string first_problem;
  auto t0 = steady::now();
  auto problem = [&](const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    if (first_problem.empty()) first_problem = what + " at " + std::to_string(static_cast<long>(ms_since(t0))) + " ms";
  };
  auto deadline = t0 + limit;

  // GET /api/projects: the first request the moment the port accepts, then until it is 200.
  std::thread list([&] {
    auto c = client(api);
    bool first = true;
    while (steady::now() < deadline) {
      auto r = c->Get("/api/projects");
      if (!r && r.error() == httplib::Error::Connection) {
        std::this_thread::sleep_for(1ms);
        continue;
      }
      int status = r ? r->status : -1;
      if (first) {
        out.list_status = status;
        out.list_first_ms = ms_since(t0);
        first = false;
      }
      if (status == 200) {
        out.list_ok_ms = ms_since(t0);
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
  });

  std::thread sweep([&] {
    std::vector<std::unique_ptr<httplib::Client>> pool;
    for (int t = 0; t < clients; ++t) pool.push_back(client(api));
    for_each_concurrently(names.size(), clients, [&](size_t i, int slot) {
      const auto path = "/api/projects/" + names[i];
      for (;;) {
        if (steady::now() > deadline) return;
        auto r = pool[slot]->Get(path.c_str());
        if (!r) {
          if (r.error() != httplib::Error::Connection) problem(path + ": " + httplib::to_string(r.error()));
          std::this_thread::sleep_for(2ms);
          continue;
        }
        if (r->status != 200) problem(path + ": HTTP " + std::to_string(r->status) + " " + r->body.substr(0, 200));
        if (r->status == 200) {
          auto j = json::parse(r->body, nullptr, false);
          if (j.is_discarded() || !j.is_object() || j.value("name", "") != names[i])
            s.fail("GET " + path + " answered 200 without the project", r->body.substr(0, 400));
          break;
        }
        ++retries;
        std::this_thread::sleep_for(5ms);
      }
      double at = ms_since(t0);
      if (steady::now() > deadline) return;  // a late 200 is not "within the limit"
      ++answered;
      std::lock_guard<std::mutex> lock(mu);
      if (at > last_ms) last_ms = at;
    });
  });

  api_client health(api.port);
  s.start_berth(berth_args, health);
  sweep.join();
  list.join();
  out.answered = answered;
  out.complete = answered == names.size();
  out.last_answer_s = out.complete ? last_ms / 1000.0 : static_cast<double>(limit.count());
  out.retries = retries;
  out.first_problem = first_problem;
  return out;
}

}  // namespace berth::bench
