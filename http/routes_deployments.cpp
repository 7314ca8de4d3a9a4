// Deployments, production and the portal-style one-shot deploy. Handlers hold no state: they
// validate, ask the projects actor, and render its typed answers. The SSE routes follow pushed
// updates (http/deployment_stream.hpp).
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>

#include "http/deployment_stream.hpp"
#include "http/render.hpp"
#include "http/reply.hpp"
#include "http/route_util.hpp"
#include "http/server.hpp"
#include "messages/atoms.hpp"
#include "messages/deployment.hpp"
#include "messages/manifest.hpp"
#include "runtime/release/release.hpp"

namespace berth::http {

namespace {

using json = nlohmann::json;

// Jobs that wait for something queued before them (production stop/start).
std::chrono::milliseconds long_timeout(const context& ctx) {
  return std::max(ctx.timeout(), std::chrono::milliseconds(180000));
}

// The deployment id in the path (req.matches[1]); or false after an invalid_request reply.
bool path_deployment(const httplib::Request& req, httplib::Response& res, std::string& id) {
  id = req.matches[1];
  std::string project;
  uint64_t seq = 0;
  if (!split_deployment_id(id, project, seq) || !check_name(project).valid) {
    reply_error(res, errc::invalid_request, "invalid deployment id");
    return false;
  }
  return true;
}

void reply_deployment(httplib::Response& res, int status, const caf::expected<deployment_view>& v, bool with_log) {
  if (!v) return reply_error(res, v.error());
  reply_json(res, status, to_json(*v, with_log));
}

void stream_deployment(const context& ctx, const httplib::Request& req, httplib::Response& res) {
  std::string id;
  if (!path_deployment(req, res, id)) return;
  // A stream waits for pushes for as long as the deployment runs: not on a worker's slot.
  auto waiting = std::make_shared<stream_slot>();
  if (!may_stream(*waiting, res)) return;
  auto stream = std::make_shared<deployment_stream>(ctx, id);
  if (auto err = stream->open()) return reply_error(res, err);
  serve_event_stream(res, waiting, [stream](httplib::DataSink& sink) { return stream->step(sink); });
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
        reply_deployment(res, 202, ask<deployment_view>(ctx.sys, projects(ctx), ctx.timeout(), deploy_atom_v, name, force),
                         false);
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
    reply_deployment(res, 202, ask<deployment_view>(ctx.sys, projects(ctx), ctx.timeout(), rollback_atom_v, name, hash),
                     false);
  });

  // GET production, GET production/history, POST production/{stop|start}: one message each.
  // A null action is the one in the path (stop|start): those wait for the jobs queued before
  // them (a deploy may take minutes).
  auto production = [&ctx](const char* action) {
    return [&ctx, action](const httplib::Request& req, httplib::Response& res) {
      std::string name;
      if (!path_name(req, res, name) || (!action && !no_body(req, res))) return;
      // stop|start wait for the jobs queued before them: the worker serves others meanwhile.
      std::optional<long_wait> waiting;
      if (!action && !may_wait_long(waiting.emplace(), res)) return;
      auto timeout = action ? ctx.timeout() : long_timeout(ctx);
      std::string what = action ? action : std::string(req.matches[2]);
      if (what == "history") {
        auto h = ask<history_view>(ctx.sys, projects(ctx), timeout, production_atom_v, name, what);
        return h ? reply_json(res, 200, to_json(*h)) : reply_error(res, h.error());
      }
      auto v = ask<production_view>(ctx.sys, projects(ctx), timeout, production_atom_v, name, what);
      v ? reply_json(res, 200, to_json(*v)) : reply_error(res, v.error());
    };
  };
  svr.Get(R"(/api/projects/([^/]+)/production)", production("status"));
  svr.Get(R"(/api/projects/([^/]+)/production/history)", production("history"));
  svr.Post(R"(/api/projects/([^/]+)/production/(stop|start))", production(nullptr));

  auto detail = [&ctx](const httplib::Request& req, httplib::Response& res) {
    std::string id;
    if (!path_deployment(req, res, id)) return;
    reply_deployment(res, 200, ask<deployment_view>(ctx.sys, projects(ctx), ctx.timeout(), deployment_atom_v, id), true);
  };
  svr.Get(R"(/api/deployments/([^/]+))", detail);
  svr.Get(R"(/api/deployment/([^/]+))", detail);  // portal alias

  auto events = [&ctx](const httplib::Request& req, httplib::Response& res) {
    stream_deployment(ctx, req, res);
  };
  svr.Get(R"(/api/deployments/([^/]+)/events)", events);
  svr.Get(R"(/api/status/([^/]+))", events);  // portal alias

  svr.Post(R"(/api/deployments/([^/]+)/cancel)", [&ctx](const httplib::Request& req, httplib::Response& res) {
    std::string id;
    if (!path_deployment(req, res, id) || !no_body(req, res)) return;
    reply_deployment(res, 200, ask<deployment_view>(ctx.sys, projects(ctx), ctx.timeout(), cancel_atom_v, id), false);
  });

  // A person's decision during a canary: promote (to 100 % now) or abort (revert, failed).
  svr.Post(R"(/api/deployments/([^/]+)/(promote|abort))", [&ctx](const httplib::Request& req, httplib::Response& res) {
    std::string id;
    if (!path_deployment(req, res, id) || !no_body(req, res)) return;
    std::string verdict = req.matches[2];
    reply_deployment(res, 200, ask<deployment_view>(ctx.sys, projects(ctx), ctx.timeout(), verdict_atom_v, verdict, id),
                     false);
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
    auto v = ask<deployment_view>(ctx.sys, projects(ctx), ctx.timeout(), oneshot_atom_v, name);
    if (!v) return reply_error(res, v.error());
    reply_json(res, 202, {{"id", v->record.id}, {"project", name}, {"url", v->public_url},
                          {"status", v->record.status()}, {"deployment", to_json(*v, false)}});
  });
}

}  // namespace berth::http
