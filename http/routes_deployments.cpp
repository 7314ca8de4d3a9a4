// Deployments, production and the portal-style one-shot deploy. Handlers hold no state:
// they validate, ask the projects actor, and translate its JSON answers. The SSE routes keep
// only per-connection state (what was already sent) and poll the actor.
#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <thread>

#include "http/reply.hpp"
#include "http/route_util.hpp"
#include "http/server.hpp"
#include "http/sse.hpp"
#include "messages/atoms.hpp"
#include "messages/deployment.hpp"
#include "messages/manifest.hpp"
#include "runtime/layout.hpp"
#include "runtime/process_driver.hpp"
#include "runtime/release.hpp"

namespace berth::http {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr size_t log_lines = 50;
constexpr auto poll_interval = 100ms;
constexpr auto poll_timeout = 2000ms;
constexpr int poll_failures = 3;
constexpr auto keepalive_interval = 15s;
constexpr auto stream_limit = 2h;

// Jobs that wait for something queued before them (production stop/start).
std::chrono::milliseconds long_timeout(const context& ctx) {
  return std::max(ctx.timeout(), std::chrono::milliseconds(180000));
}

// The deployment id in the path (req.matches[1]), its project name with it; or false after an
// invalid_request reply.
bool path_deployment(const httplib::Request& req, httplib::Response& res, std::string& id,
                     std::string& project) {
  id = req.matches[1];
  uint64_t seq = 0;
  if (!split_deployment_id(id, project, seq) || !check_name(project).valid) {
    reply_error(res, errc::invalid_request, "invalid deployment id");
    return false;
  }
  return true;
}

std::string log_path(const context& ctx, const std::string& project, const std::string& id) {
  return paths_for(ctx.cfg.data_dir, project).deployment_log(id).string();
}

// One SSE connection following one deployment: what was sent, where the log was read to.
class deployment_stream {
 public:
  deployment_stream(const context& ctx, std::string id, std::string log, json detail)
      : ctx_(ctx), id_(std::move(id)), log_(std::move(log)), first_(std::move(detail)) {}

  // One round of the chunked content provider; false drops the connection.
  bool step(httplib::DataSink& sink) {
    if (!started_) {
      started_ = true;
      opened_ = last_write_ = clock_type::now();
      // The current state first, then the log so far.
      if (!send_progress(sink, first_) || !send_lines(sink, log_.backlog(log_lines))) return false;
      if (terminal(first_)) return finish(sink, first_);
      return true;
    }
    std::this_thread::sleep_for(poll_interval);
    if (clock_type::now() - opened_ > stream_limit) {
      if (!send(sink, sse_comment("stream time limit reached; reconnect to follow on"))) return false;
      sink.done();
      return true;
    }
    if (!sink.is_writable()) return false;
    auto detail = poll();
    if (detail.is_discarded()) {
      if (++failures_ < poll_failures) return keepalive(sink);
      if (!send(sink,
                sse_event("error", {{"phase", nullptr}, {"message", failure_}, {"code", "unavailable"}})))
        return false;
      sink.done();
      return true;
    }
    failures_ = 0;
    if (!send_progress(sink, detail)) return false;
    if (terminal(detail)) return finish(sink, detail);
    if (!send_lines(sink, log_.poll())) return false;
    return keepalive(sink);
  }

 private:
  // The detail now; discarded (with failure_ set) when the actor did not answer usefully.
  json poll() {
    auto r = ask<std::string>(ctx_.sys, projects(ctx_), poll_timeout, deployment_atom_v, id_);
    if (!r) {
      auto v = view(r.error());
      failure_ = v.message.empty() ? code_name(v.code) : v.message;
      return json(json::value_t::discarded);
    }
    auto j = json::parse(*r, nullptr, false);
    if (!j.is_object()) {
      failure_ = "unreadable deployment state";
      return json(json::value_t::discarded);
    }
    return j;
  }

  static bool terminal(const json& detail) {
    auto it = detail.find("status");
    return it != detail.end() && it->is_string() && is_terminal_status(it->get<std::string>());
  }

  bool send(httplib::DataSink& sink, const std::string& frame) {
    if (!sink.write(frame.data(), frame.size())) return false;
    last_write_ = clock_type::now();
    return true;
  }

  // A progress event when the state changed, preceded by one for each phase passed through
  // since the last poll (a phase may take only a few ms). On the first call (the current
  // state, for a client that may connect late) the past phases are not replayed.
  bool send_progress(httplib::DataSink& sink, const json& detail) {
    auto resources = last_progress_.is_object() ? last_progress_["resources"] : json::object();
    auto steps = passed_phases(detail, phases_seen_, resources);
    if (last_progress_.is_null()) steps.clear();
    steps.push_back(progress_data(detail));
    for (auto& p : steps) {
      if (p == last_progress_) continue;
      last_progress_ = p;
      if (!send(sink, sse_event("progress", p))) return false;
    }
    return true;
  }

  bool send_lines(httplib::DataSink& sink, const std::vector<std::string>& lines) {
    for (auto& line : lines)
      if (!send(sink, sse_event("log", {{"line", line}}))) return false;
    return true;
  }

  // The rest of the log (the deployment is over, so also an unterminated last line), then
  // `complete` or `error`, then the end of the stream.
  bool finish(httplib::DataSink& sink, const json& detail) {
    if (!send_lines(sink, log_.drain())) return false;
    std::string name;
    auto data = end_data(detail, name);
    if (!send(sink, sse_event(name, data))) return false;
    sink.done();
    return true;
  }

  bool keepalive(httplib::DataSink& sink) {
    if (clock_type::now() - last_write_ < keepalive_interval) return true;
    return send(sink, sse_comment("keepalive"));
  }

  const context& ctx_;
  std::string id_;
  log_follower log_;
  json first_;
  json last_progress_;      // null: nothing sent yet
  size_t phases_seen_ = 0;  // entries of detail["phases"] reported
  bool started_ = false;
  int failures_ = 0;
  std::string failure_;
  clock_type::time_point opened_, last_write_;
};

void stream_deployment(const context& ctx, const httplib::Request& req, httplib::Response& res) {
  std::string id, project;
  if (!path_deployment(req, res, id, project)) return;
  auto r = ask<std::string>(ctx.sys, projects(ctx), ctx.timeout(), deployment_atom_v, id);
  if (!r) return reply_error(res, r.error());
  auto detail = json::parse(*r, nullptr, false);
  if (!detail.is_object()) return reply_error(res, errc::internal, "unreadable deployment state");
  auto stream = std::make_shared<deployment_stream>(ctx, id, log_path(ctx, project, id), std::move(detail));
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  // Exactly "text/event-stream": httplib compresses every other text/* type, which would
  // hold the events back until the end.
  res.set_chunked_content_provider("text/event-stream", [stream](size_t, httplib::DataSink& sink) {
    try {
      return stream->step(sink);
    } catch (...) {
      return false;  // an exception must not leave the provider: drop the connection
    }
  });
}

void get_deployment(const context& ctx, const httplib::Request& req, httplib::Response& res) {
  std::string id, project;
  if (!path_deployment(req, res, id, project)) return;
  auto r = ask<std::string>(ctx.sys, projects(ctx), ctx.timeout(), deployment_atom_v, id);
  if (!r) return reply_error(res, r.error());
  auto detail = json::parse(*r, nullptr, false);
  if (!detail.is_object()) return reply_error(res, errc::internal, "unreadable deployment state");
  detail["log"] = process_driver::tail(log_path(ctx, project, id), log_lines);
  reply_json(res, 200, detail);
}

}  // namespace

void add_deployment_routes(httplib::Server& svr, const context& ctx) {
  svr.Post(
      R"(/api/projects/([^/]+)/deployments)", [&ctx](const httplib::Request& req, httplib::Response& res) {
        std::string name;
        json body;
        if (!path_name(req, res, name) || !body_object(req, res, {"force"}, body)) return;
        bool force = false;
        if (body.contains("force")) {
          if (!body["force"].is_boolean())
            return reply_error(res, errc::invalid_request, "field 'force' must be true or false");
          force = body["force"].get<bool>();
        }
        answer(res, 202, ask<std::string>(ctx.sys, projects(ctx), ctx.timeout(), deploy_atom_v, name, force));
      });

  svr.Post(R"(/api/projects/([^/]+)/production/rollback)", [&ctx](const httplib::Request& req,
                                                                  httplib::Response& res) {
    std::string name;
    json body;
    if (!path_name(req, res, name) || !body_object(req, res, {"hash"}, body)) return;
    std::string hash;  // "": the previous release
    if (body.contains("hash") && !body["hash"].is_null()) {
      if (body["hash"].is_string()) hash = body["hash"].get<std::string>();
      if (!body["hash"].is_string() || (!hash.empty() && !valid_release_hash(hash)))
        return reply_error(res, errc::invalid_request,
                           "field 'hash' must be a release hash (12 lowercase hex "
                           "characters); leave it out to roll back to the previous release");
    }
    answer(res, 202, ask<std::string>(ctx.sys, projects(ctx), ctx.timeout(), rollback_atom_v, name, hash));
  });

  // GET production, GET production/history, POST production/{stop|start}: one message each.
  // A null action is the one in the path (stop|start): those wait for the jobs queued before
  // them (a deploy may take minutes).
  auto production = [&ctx](const char* action) {
    return [&ctx, action](const httplib::Request& req, httplib::Response& res) {
      std::string name;
      if (!path_name(req, res, name) || (!action && !no_body(req, res))) return;
      auto timeout = action ? ctx.timeout() : long_timeout(ctx);
      std::string what = action ? action : std::string(req.matches[2]);
      answer(res, 200, ask<std::string>(ctx.sys, projects(ctx), timeout, production_atom_v, name, what));
    };
  };
  svr.Get(R"(/api/projects/([^/]+)/production)", production("status"));
  svr.Get(R"(/api/projects/([^/]+)/production/history)", production("history"));
  svr.Post(R"(/api/projects/([^/]+)/production/(stop|start))", production(nullptr));

  auto detail = [&ctx](const httplib::Request& req, httplib::Response& res) {
    get_deployment(ctx, req, res);
  };
  svr.Get(R"(/api/deployments/([^/]+))", detail);
  svr.Get(R"(/api/deployment/([^/]+))", detail);  // portal alias

  auto events = [&ctx](const httplib::Request& req, httplib::Response& res) {
    stream_deployment(ctx, req, res);
  };
  svr.Get(R"(/api/deployments/([^/]+)/events)", events);
  svr.Get(R"(/api/status/([^/]+))", events);  // portal alias

  svr.Post(R"(/api/deployments/([^/]+)/cancel)", [&ctx](const httplib::Request& req, httplib::Response& res) {
    std::string id, project;
    if (!path_deployment(req, res, id, project) || !no_body(req, res)) return;
    answer(res, 200, ask<std::string>(ctx.sys, projects(ctx), ctx.timeout(), cancel_atom_v, id));
  });

  svr.Post("/api/deploy", [&ctx](const httplib::Request& req, httplib::Response& res) {
    json body;
    if (!body_object(req, res, {"name"}, body)) return;
    if (!body.contains("name") || !body["name"].is_string())
      return reply_error(res, errc::invalid_request,
                         "request body must be a JSON object with a string field 'name'");
    auto name = body["name"].get<std::string>();
    if (auto nc = check_name(name); !nc.valid)
      return reply_error(res, errc::invalid_name, "name " + nc.reason);
    answer(res, 202, ask<std::string>(ctx.sys, projects(ctx), ctx.timeout(), oneshot_atom_v, name));
  });
}

}  // namespace berth::http
