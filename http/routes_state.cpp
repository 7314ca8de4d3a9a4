// The project at any instant: GET /api/projects/{name}/state?at=<ISO-8601>. The handler holds
// no state: the events come from the event store (through the projects actor, as for
// GET …/events) and are folded here, on the HTTP worker, by messages/replay.hpp: the same
// folds as `berth audit replay --until`.
#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "http/render.hpp"
#include "http/reply.hpp"
#include "http/route_util.hpp"
#include "http/server.hpp"
#include "messages/atoms.hpp"
#include "messages/replay.hpp"
#include "messages/views.hpp"

namespace berth::http {

namespace {

int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

void add_state_routes(httplib::Server& svr, const context& ctx) {
  svr.Get(R"(/api/projects/([^/]+)/state)", [&ctx](const httplib::Request& req, httplib::Response& res) {
    std::string name;
    int64_t at_us = 0;
    if (!path_name(req, res, name) || !query_time(req, res, "at", now_us(), at_us)) return;
    // The whole stream: events after `at` say whether the incarnation alive then was deleted.
    auto events = ask<std::vector<event_record>>(ctx.sys, projects(ctx), ctx.timeout(), events_atom_v, name,
                                                 uint64_t{0}, uint64_t{0});
    if (!events) return reply_error(res, events.error());
    if (events->empty())
      return reply_error(res, errc::not_found, "no project named '" + name + "' has ever existed");
    auto at = project_state_at(name, *events, at_us);
    if (!at.state.exists)
      return reply_error(res, errc::not_found,
                         "no project named '" + name + "' existed at " + iso8601(at_us));
    reply_json(res, 200, to_json(state_view{at_us, std::move(at.state), at.deleted_us}));
  });
}

}  // namespace berth::http
