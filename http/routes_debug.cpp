// Fault injection for tests, registered only with --enable-fault-injection (which berth
// refuses unless it listens on loopback); without it these routes do not exist (404).
//   POST /api/debug/fail  {"backend": "process"|"proxy", "count": N, "kind": "transient"|"permanent"}
//        The next N calls to the backend fail (count 0 clears; kind defaults to transient).
//        They go through the same retry policy and circuit breaker as real failures.
//        200 {backend, kind, pending}
//   POST /api/debug/crash {"actor": "project"|"preview"|"production", "project": "<name>"}
//                      or {"actor": "event_store"|"port_allocator"|"projects"|"proxy"}
//        Kills the actor with an error, as a bug would; its supervisor restarts it.
//        202 {crashed, project?}; 404 when that actor is not running (e.g. proxy in direct mode).
#include <algorithm>
#include <map>

#include <httplib.h>

#include "actors/names.hpp"
#include "http/reply.hpp"
#include "http/route_util.hpp"
#include "http/server.hpp"
#include "messages/atoms.hpp"
#include "messages/manifest.hpp"
#include "runtime/resilience/backends.hpp"

namespace berth::http {

namespace {

using json = nlohmann::json;

constexpr int max_injected_faults = 1000;

// A required string field, or false after a 400 reply.
bool string_field(const json& body, httplib::Response& res, const char* key, std::string& out) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_string()) {
    reply_error(res, errc::invalid_request, std::string("field '") + key + "' is required and must be a string");
    return false;
  }
  out = it->get<std::string>();
  return true;
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

void fail_route(const context& ctx, const httplib::Request& req, httplib::Response& res) {
  json body;
  if (!body_object(req, res, {"backend", "count", "kind"}, body, false)) return;
  std::string backend;
  if (!string_field(body, res, "backend", backend)) return;
  auto& known = known_backends();
  if (std::find(known.begin(), known.end(), backend) == known.end())
    return reply_error(res, errc::invalid_request,
                       "unknown backend '" + backend + "' (backends: " + joined(known) + ")");
  auto count = body.find("count");
  if (count == body.end() || !count->is_number_integer() || count->get<int64_t>() < 0 ||
      count->get<int64_t>() > max_injected_faults)
    return reply_error(res, errc::invalid_request,
                       "field 'count' is required and must be an integer from 0 to " +
                           std::to_string(max_injected_faults));
  fault_kind kind = fault_kind::transient;
  if (body.contains("kind")) {
    std::string text;
    if (!string_field(body, res, "kind", text)) return;
    if (!parse_fault_kind(text, kind))
      return reply_error(res, errc::invalid_request, "field 'kind' must be \"transient\" or \"permanent\"");
  }
  auto pending = ask<int32_t>(ctx.sys, names::whereis(ctx.sys, names::backends), ctx.timeout(), fail_atom_v, backend,
                              static_cast<int32_t>(count->get<int>()), std::string(to_string(kind)));
  if (!pending) return reply_error(res, pending.error());
  reply_json(res, 200, {{"backend", backend}, {"kind", to_string(kind)}, {"pending", *pending}});
}

const std::map<std::string, caf::atom_value>& top_level_actors() {
  static const std::map<std::string, caf::atom_value> m{{"event_store", names::event_store},
                                                        {"port_allocator", names::ports},
                                                        {"projects", names::projects},
                                                        {"proxy", names::proxy}};
  return m;
}

void crash_route(const context& ctx, const httplib::Request& req, httplib::Response& res) {
  json body;
  if (!body_object(req, res, {"actor", "project"}, body, false)) return;
  std::string actor;
  if (!string_field(body, res, "actor", actor)) return;
  if (actor == "project" || actor == "preview" || actor == "production") {
    std::string project;
    if (!string_field(body, res, "project", project)) return;
    if (auto nc = check_name(project); !nc.valid)
      return reply_error(res, errc::invalid_name, "project name " + nc.reason);
    auto r = ask<std::string>(ctx.sys, projects(ctx), ctx.timeout(), crash_atom_v, project, actor);
    if (!r) return reply_error(res, r.error());
    return reply_json(res, 202, {{"crashed", *r}, {"project", project}});
  }
  auto it = top_level_actors().find(actor);
  if (it == top_level_actors().end())
    return reply_error(res, errc::invalid_request,
                       "unknown actor '" + actor +
                           "' (actors: project, preview, production with a project; event_store, "
                           "port_allocator, projects, proxy without)");
  if (body.contains("project"))
    return reply_error(res, errc::invalid_request, "field 'project' is only for project, preview and production");
  auto target = names::whereis(ctx.sys, it->second);
  if (!target) return reply_error(res, errc::not_found, "actor '" + actor + "' is not running");
  // caf::anon_send_exit takes only exit_reason codes in CAF 0.17; this is what it does, with
  // an error as the reason, so that the supervisor sees a crash rather than a shutdown.
  target->enqueue(nullptr, caf::make_message_id(),
                  caf::make_message(caf::exit_msg{target.address(), make_error(errc::internal, "crash requested")}),
                  nullptr);
  reply_json(res, 202, {{"crashed", actor}});
}

}  // namespace

void add_debug_routes(httplib::Server& svr, const context& ctx) {
  svr.Post("/api/debug/fail",
           [&ctx](const httplib::Request& req, httplib::Response& res) { fail_route(ctx, req, res); });
  svr.Post("/api/debug/crash",
           [&ctx](const httplib::Request& req, httplib::Response& res) { crash_route(ctx, req, res); });
}

}  // namespace berth::http
