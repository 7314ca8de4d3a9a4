// The control endpoint (see server.hpp): berth's listener and workers feeding httplib's parser
// and router set up with berth's connection handling (connection.hpp), the request checks and
// error answers, logging, and the routes.
#include "http/server.hpp"

#include <algorithm>
#include <exception>

#include <httplib.h>

#include "http/connection.hpp"
#include "http/dispatch.hpp"
#include "http/listener.hpp"
#include "http/reply.hpp"
#include "runtime/logs/logging.hpp"
#include "runtime/net/transport.hpp"

namespace berth::http {

namespace cd = connection_detail;

bool check_listen_security(const config& cfg) {
  auto listen = cfg.listen_host + ":" + std::to_string(cfg.listen_port);
  if (!cfg.tls_cert.empty()) {
    std::string error;
    if (!tls_context::load(cfg.tls_cert, cfg.tls_key, error)) {
      log_kv(spdlog::level::critical, "refusing to start: " + error, {{"listen", listen}});
      return false;
    }
    log_kv(spdlog::level::info, "API served over HTTPS (TLS)",
           {{"listen", listen}, {"certificate", cfg.tls_cert}, {"scheme", "https"}});
    return true;
  }
  if (is_loopback_host(cfg.listen_host)) {
    log_kv(spdlog::level::info, "API served over plain HTTP on loopback", {{"listen", listen}, {"scheme", "http"}});
    return true;
  }
  if (!cfg.insecure_http) {
    log_kv(spdlog::level::critical,
           "refusing to start: berth listens on a non-loopback address without TLS, so the API token would "
           "cross the network in clear. Give a certificate and key with --tls-cert and --tls-key (or "
           "BERTH_TLS_CERT / BERTH_TLS_KEY), or accept plain HTTP explicitly with --insecure-http (for example "
           "behind a TLS-terminating proxy on a private network)",
           {{"listen", listen}});
    return false;
  }
  log_kv(spdlog::level::warn,
         "API served over plain HTTP on a non-loopback address (--insecure-http): the token crosses the "
         "network in clear",
         {{"listen", listen}, {"scheme", "http"}});
  return true;
}

server::server(caf::actor_system& sys, const config& cfg, berth_metrics* metrics)
    : sys_(sys),
      cfg_(cfg),
      ctx_{sys_, cfg_, std::chrono::steady_clock::now(), &stopping_},
      svr_(std::make_unique<cd::guarded_server>()) {
  ctx_.metrics = metrics;
  // httplib's own cap is the larger limit; admit() holds each route to its own.
  svr_->set_payload_max_length(std::max<uint64_t>(cfg_.max_body_bytes, cfg_.max_upload_bytes));
  svr_->set_keep_alive_timeout(cd::keep_alive_idle_s);
  svr_->set_keep_alive_max_count(cd::keep_alive_requests);
  const std::string token = cfg_.token;
  const cd::admission_limits limits{cfg_.max_body_bytes, cfg_.max_upload_bytes, cfg_.metrics_public};
  svr_->set_expect_100_continue_handler([token, limits](const httplib::Request& req, httplib::Response& res) {
    return cd::admit(req, res, token, limits) ? 100 : res.status;
  });
  svr_->set_pre_routing_handler([token, limits](const httplib::Request& req, httplib::Response& res) {
    return cd::admit(req, res, token, limits) ? httplib::Server::HandlerResponse::Unhandled
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
  svr_->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    if (spdlog::should_log(spdlog::level::debug))  // the fields cost allocations on every request
      log_kv(spdlog::level::debug, "http", {{"method", req.method}, {"path", req.path}, {"status", res.status}});
    count_request(ctx_, req, res);
  });
  add_health_routes(*svr_, ctx_);
  add_project_routes(*svr_, ctx_);
  add_state_routes(*svr_, ctx_);
  add_deployment_routes(*svr_, ctx_);
  add_log_routes(*svr_, ctx_);
  add_source_routes(*svr_, ctx_);
  if (ctx_.metrics) add_metrics_routes(*svr_, ctx_);
  add_session_routes(*svr_, ctx_);
  add_web_routes(*svr_, ctx_);
  if (cfg_.enable_fault_injection) add_debug_routes(*svr_, ctx_);
}

server::~server() {
  stop();
  if (workers_) workers_->join();  // the workers use svr_ and listener_
}

bool server::bind(std::string& error) {
  if (cfg_.token.empty()) {
    error = "no API token: refusing to serve the API without one";
    return false;
  }
  if (!cfg_.tls_cert.empty() && !(tls_ = tls_context::load(cfg_.tls_cert, cfg_.tls_key, error))) return false;
  workers_ = std::make_unique<dispatcher>(dispatch_limits{static_cast<size_t>(std::max(1, cfg_.http_threads)),
                                                          static_cast<size_t>(std::max(0, cfg_.http_queue)),
                                                          static_cast<size_t>(std::max(0, cfg_.http_long_calls)),
                                                          static_cast<size_t>(std::max(0, cfg_.http_streams))});
  listener_ = std::make_unique<listener>(tls_.get(), *workers_,
                                         [svr = svr_.get()](std::shared_ptr<transport> conn, size_t served) {
                                           svr->serve(std::move(conn), served);
                                         });
  if (!listener_->bind(cfg_.listen_host, cfg_.listen_port, error)) return false;
  ctx_.workers = workers_.get();
  svr_->set_linger([l = listener_.get()](std::shared_ptr<transport> conn) { l->linger(std::move(conn)); });
  svr_->set_park([l = listener_.get()](std::shared_ptr<transport> conn, size_t served) {
    l->park(std::move(conn), served);
  });
  svr_->open(listener_->fd());
  return true;
}

// Returns once the listener has stopped and every request in progress has been answered.
void server::run() {
  if (!listener_) return;
  listener_->run();
  workers_->join();
}

void server::stop() {
  stopping_ = true;
  if (!listener_) return;
  svr_->close();
  listener_->stop();
  if (workers_) workers_->stop();
}

}  // namespace berth::http
