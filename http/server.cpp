// The control endpoint (see server.hpp): httplib set up with berth's connection handling
// (connection.hpp), the request checks and error answers, logging, and the routes.
#include "http/server.hpp"

#include <algorithm>
#include <exception>

#include <httplib.h>

#include "http/connection.hpp"
#include "http/reply.hpp"
#include "runtime/logs/logging.hpp"

namespace berth::http {

namespace cd = connection_detail;

server::server(caf::actor_system& sys, const config& cfg)
    : sys_(sys),
      cfg_(cfg),
      ctx_{sys_, cfg_, std::chrono::steady_clock::now()},
      svr_(cd::new_guarded_server()) {
  auto threads = static_cast<size_t>(std::max(1, cfg_.http_threads));
  svr_->new_task_queue = [threads] { return cd::new_stamped_pool(threads); };
  svr_->set_payload_max_length(cfg_.max_body_bytes);
  svr_->set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(cd::io_timeout).count(), 0);
  svr_->set_write_timeout(std::chrono::duration_cast<std::chrono::seconds>(cd::io_timeout).count(), 0);
  svr_->set_keep_alive_timeout(cd::keep_alive_idle_s);
  svr_->set_keep_alive_max_count(cd::keep_alive_requests);
  svr_->set_tcp_nodelay(true);  // headers and body go out in separate writes; no Nagle delay
  const std::string token = cfg_.token;
  const size_t max_body = cfg_.max_body_bytes;
  svr_->set_expect_100_continue_handler([token, max_body](const httplib::Request& req, httplib::Response& res) {
    return cd::admit(req, res, token, max_body) ? 100 : res.status;
  });
  svr_->set_pre_routing_handler([token, max_body](const httplib::Request& req, httplib::Response& res) {
    return cd::admit(req, res, token, max_body) ? httplib::Server::HandlerResponse::Unhandled
                                            : httplib::Server::HandlerResponse::Handled;
  });
  // Tell the client when this answer ends the connection.
  svr_->set_post_routing_handler(cd::mark_close);
  svr_->set_error_handler(httplib::Server::HandlerWithResponse(cd::json_errors));
  svr_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    log_kv(spdlog::level::err, "request handler failed", {{"error", what}});
    reply_error(res, 500, "internal", "internal error");
  });
  svr_->set_logger([](const httplib::Request& req, const httplib::Response& res) {
    log_kv(spdlog::level::debug, "http", {{"method", req.method}, {"path", req.path}, {"status", res.status}});
  });
  add_health_routes(*svr_, ctx_);
  add_project_routes(*svr_, ctx_);
  add_deployment_routes(*svr_, ctx_);
  if (cfg_.enable_fault_injection) add_debug_routes(*svr_, ctx_);
}

server::~server() = default;

bool server::bind(std::string& error) {
  if (cfg_.token.empty()) {
    error = "no API token: refusing to serve the API without one";
    return false;
  }
  if (!svr_->bind_to_port(cfg_.listen_host.c_str(), cfg_.listen_port)) {
    error = "cannot listen on " + cfg_.listen_host + ":" + std::to_string(cfg_.listen_port);
    return false;
  }
  return true;
}

void server::run() { svr_->listen_after_bind(); }

void server::stop() { svr_->stop(); }

}  // namespace berth::http
