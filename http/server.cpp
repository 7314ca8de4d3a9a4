#include "http/server.hpp"

#include <httplib.h>

#include "http/reply.hpp"
#include "runtime/logging.hpp"

namespace berth::http {

namespace {

// httplib answers some requests itself (unknown route, body too large, bad request line)
// with an empty body: give those the same JSON error shape as everything else.
httplib::Server::HandlerResponse json_errors(const httplib::Request&, httplib::Response& res) {
  if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
  switch (res.status) {
    case 404: reply_error(res, 404, "not_found", "no such route"); break;
    case 405: reply_error(res, 405, "method_not_allowed", "method not allowed"); break;
    case 413: reply_error(res, 413, "payload_too_large", "request body is too large"); break;
    case 414: reply_error(res, 414, "uri_too_long", "request URI is too long"); break;
    default: reply_error(res, res.status, "bad_request", "malformed request"); break;
  }
  return httplib::Server::HandlerResponse::Handled;
}

}  // namespace

server::server(caf::actor_system& sys, const config& cfg)
    : sys_(sys),
      cfg_(cfg),
      ctx_{sys_, cfg_, std::chrono::steady_clock::now()},
      svr_(std::make_unique<httplib::Server>()) {
  auto threads = cfg_.http_threads;
  svr_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr_->set_payload_max_length(cfg_.max_body_bytes);
  svr_->set_read_timeout(5, 0);
  svr_->set_write_timeout(5, 0);
  svr_->set_keep_alive_timeout(2);
  svr_->set_tcp_nodelay(true);  // headers and body go out in separate writes; no Nagle delay
  svr_->set_keep_alive_max_count(100);
  svr_->set_error_handler(httplib::Server::HandlerWithResponse(json_errors));
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
}

server::~server() = default;

bool server::bind(std::string& error) {
  if (!svr_->bind_to_port(cfg_.listen_host.c_str(), cfg_.listen_port)) {
    error = "cannot listen on " + cfg_.listen_host + ":" + std::to_string(cfg_.listen_port);
    return false;
  }
  return true;
}

void server::run() { svr_->listen_after_bind(); }

void server::stop() { svr_->stop(); }

}  // namespace berth::http
