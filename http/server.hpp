// The control endpoint: cpp-httplib on a bounded thread pool, with body, header and time
// limits so that slow or large requests cannot pin the server.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include <caf/all.hpp>

#include "config/config.hpp"

namespace httplib {
class Server;
}

namespace berth::http {

// What route handlers may use: the actor system to ask actors, and the config.
struct context {
  caf::actor_system& sys;
  const config& cfg;
  std::chrono::steady_clock::time_point started;
  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(cfg.request_timeout_ms);
  }
};
void add_health_routes(httplib::Server& svr, const context& ctx);
void add_project_routes(httplib::Server& svr, const context& ctx);
void add_deployment_routes(httplib::Server& svr, const context& ctx);

class server {
 public:
  server(caf::actor_system& sys, const config& cfg);
  ~server();
  // Binds the listen address; false (with a reason) when it cannot.
  bool bind(std::string& error);
  // Serves until stop(); call from a dedicated thread.
  void run();
  void stop();

 private:
  caf::actor_system& sys_;
  config cfg_;
  context ctx_;
  std::unique_ptr<httplib::Server> svr_;
};

}  // namespace berth::http
