// The dry-run branch of POST /api/projects/{name}/deployments (plan_route.hpp).
#include <httplib.h>

#include <algorithm>
#include <chrono>

#include "http/dispatch.hpp"
#include "http/plan_route.hpp"
#include "http/reply.hpp"
#include "http/route_util.hpp"
#include "messages/atoms.hpp"
#include "runtime/release/source.hpp"

namespace berth::http {

namespace {

using json = nlohmann::json;

// A flag of the body: absent is false; anything but a boolean is refused.
bool flag(const json& body, const char* name, httplib::Response& res, bool* out) {
  *out = false;
  if (!body.contains(name)) return true;
  if (!body[name].is_boolean()) {
    reply_error(res, errc::invalid_request, std::string("field '") + name + "' must be true or false");
    return false;
  }
  *out = body[name].get<bool>();
  return true;
}

}  // namespace

bool wants_plan(const json& body) {
  return body.contains("build") || (body.contains("dry_run") && body["dry_run"] != json(false));
}

void reply_plan(const context& ctx, const std::string& name, const json& body, httplib::Response& res) {
  plan_request request;
  bool dry_run = false;
  if (!flag(body, "dry_run", res, &dry_run) || !flag(body, "build", res, &request.build) ||
      !flag(body, "force", res, &request.force))
    return;
  if (!dry_run)
    return reply_error(res, errc::invalid_request,
                       "field 'build' applies only to a plan: send {\"dry_run\": true, \"build\": true}");
  // A git snapshot, and with build the build itself, may take minutes: the worker serves others.
  long_wait waiting;
  if (!may_wait_long(waiting, res)) return;
  auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(default_git_timeout) + std::chrono::seconds(60);
  if (request.build) limit += std::chrono::seconds(ctx.cfg.deploy.build_timeout_s);
  auto v = ask<plan_view>(ctx.sys, projects(ctx), std::max(ctx.timeout(), limit), plan_atom_v, name, request);
  v ? reply_json(res, 200, to_json(*v)) : reply_error(res, v.error());
}

}  // namespace berth::http
