#include "bench/common/managers_berth.hpp"

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "bench/common/managers_apps.hpp"
#include "runtime/auth/token.hpp"

namespace berth::bench {

using json = nlohmann::json;
using namespace std::chrono_literals;

berth_manager::berth_manager(session& s, std::string berth, std::string dir)
    : s_(s), berth_(std::move(berth)), dir_(std::move(dir)) {}

void berth_manager::start(const std::string& data_name, const std::vector<std::string>& extra, bool proxy) {
  api_port_ = free_port();
  api_ = std::make_unique<api_client>(api_port_);
  std::vector<std::string> args{berth_, "serve", "--listen", "127.0.0.1:" + std::to_string(api_port_),
                                "--data", dir_ + "/" + data_name, "--stop-grace-ms", "1000"};
  token_ = "bench-" + berth::generate_token();  // the preview clients send it too
  args.insert(args.end(), {"--token", token_});
  auto window = port_window_args(std::random_device{}());
  args.insert(args.end(), window.begin(), window.end());
  args.insert(args.end(), extra.begin(), extra.end());
  s_.start_berth(args, *api_, [proxy](const json& h) {
    return !proxy || (h.contains("proxy") && h["proxy"].value("status", "") == "running");
  });
}

void berth_manager::kill() { s_.kill_berth(); }

pid_t berth_manager::daemon_pid() const { return listener_pid(api_port_); }

void berth_manager::create_previews(std::vector<managed_app>& apps) {
  for (auto& a : apps) {
    json m = {{"name", a.name},
              {"source", {{"path", a.dir}}},
              {"preview",
               {{"command", a.argv},
                {"health", {{"path", "/health"}, {"timeout_s", 60}, {"interval_ms", 10}}}}}};
    auto [code, body] = api_->post("/api/projects", m);
    if (code != 201) s_.fail("POST /api/projects " + a.name + ": HTTP " + std::to_string(code), body.dump());
    a.port = body.at("ports").at("preview").get<uint16_t>();
  }
}

std::string berth_manager::preview_all(const std::vector<managed_app>& apps, const std::string& action,
                                       int parallel) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::string first_error;
  std::vector<std::thread> clients;
  for (int c = 0; c < parallel; ++c)
    clients.emplace_back([&] {
      api_client api(api_port_);  // its own keep-alive connection, as 12 separate clients
      api.cli.set_bearer_token_auth(token_);
      api.cli.set_read_timeout(180, 0);  // as long as berth itself waits for a preview to get healthy
      for (size_t i = next++; i < apps.size(); i = next++) {
        auto [code, body] = api.post("/api/projects/" + apps[i].name + "/preview/" + action, json::object());
        if (code != 200) {
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.empty())
            first_error = "preview/" + action + " " + apps[i].name + ": HTTP " + std::to_string(code) + " " + body.dump();
        }
      }
    });
  for (auto& th : clients) th.join();
  return first_error;
}

std::string berth_manager::delete_all(const std::vector<managed_app>& apps) {
  for (auto& a : apps) {
    auto r = api_->cli.Delete(("/api/projects/" + a.name).c_str());
    if (!r || r->status != 200)
      return "DELETE /api/projects/" + a.name + ": " + (r ? "HTTP " + std::to_string(r->status) + " " + r->body : "no answer");
  }
  return "";
}

uint16_t berth_manager::create_node_production(const std::string& name, const std::string& app_dir,
                                               const std::string& node) {
  json m = {{"name", name},
            {"source", {{"path", app_dir}}},
            {"build", {{"command", {"install", "-D", "-m", "644", "-t", "dist", "VERSION", "server.js"}},
                       {"artifacts", {"dist"}}}},
            {"production",
             {{"command", {node, "dist/server.js"}},
              {"health", {{"path", "/health"}, {"timeout_s", 30}, {"interval_ms", 10}, {"min_healthy_s", 0}}},
              {"keep", 3}}}};
  auto [code, body] = api_->post("/api/projects", m);
  if (code != 201) s_.fail("POST /api/projects " + name + ": HTTP " + std::to_string(code), body.dump());
  return body.at("ports").at("production").get<uint16_t>();
}

std::string berth_manager::deploy(const std::string& name) {
  auto t0 = steady_clock::now();
  auto [code, body] = api_->post("/api/projects/" + name + "/deployments", json::object());
  if (code != 202 || !body.contains("id")) return "POST deployments: HTTP " + std::to_string(code) + " " + body.dump();
  std::string id = body["id"];
  for (;;) {
    auto [c, d] = api_->get("/api/deployments/" + id);
    auto st = c == 200 ? d.value("status", "") : "";
    if (st == "completed") break;
    if (st == "failed" || st == "cancelled" || st == "unchanged") return "deployment " + id + " ended " + st + ": " + d.dump();
    if (steady_clock::now() - t0 > 90s) return "deployment " + id + " did not end within 90 s";
    std::this_thread::sleep_for(10ms);
  }
  return "";
}

}  // namespace berth::bench
