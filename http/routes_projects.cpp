#include <httplib.h>

#include "http/render.hpp"
#include "http/reply.hpp"
#include "http/route_util.hpp"
#include "http/server.hpp"
#include "messages/atoms.hpp"
#include "messages/manifest.hpp"
#include "runtime/state/project_index.hpp"

namespace berth::http {

namespace {

using json = nlohmann::json;

bool body_manifest(const httplib::Request& req, httplib::Response& res, manifest& out) {
  auto j = json::parse(req.body, nullptr, false);
  if (j.is_discarded()) {
    reply_error(res, errc::invalid_request, "request body is not valid JSON");
    return false;
  }
  auto parsed = parse_manifest(j);
  if (!parsed.ok) {
    bool name_problem = parsed.error.rfind("name:", 0) == 0;
    reply_error(res, name_problem ? errc::invalid_name : errc::invalid_manifest, parsed.error);
    return false;
  }
  out = std::move(parsed.value);
  return true;
}

template <class View>
void reply_view(httplib::Response& res, int status, const caf::expected<View>& v) {
  if (!v) return reply_error(res, v.error());
  reply_json(res, status, to_json(*v));
}

}  // namespace

void add_project_routes(httplib::Server& svr, const context& ctx) {
  constexpr const char* one = R"(/api/projects/([^/]+))";

  svr.Get(R"(/api/check/([^/]+))", [&ctx](const httplib::Request& req, httplib::Response& res) {
    std::string name = req.matches[1];
    auto nc = check_name(name);
    if (!nc.valid) {
      reply_json(res, 200, {{"name", name}, {"valid", false}, {"available", false},
                            {"reason", "name " + nc.reason}});
      return;
    }
    auto available = ask<bool>(ctx.sys, projects(ctx), ctx.timeout(), check_atom_v, name);
    if (!available) return reply_error(res, available.error());
    reply_json(res, 200, {{"name", name}, {"valid", true}, {"available", *available},
                          {"reason", *available ? json(nullptr) : json("name is already taken")}});
  });

  svr.Post("/api/projects", [&ctx](const httplib::Request& req, httplib::Response& res) {
    manifest m;
    if (!body_manifest(req, res, m)) return;
    reply_view(res, 201, ask<project_view>(ctx.sys, projects(ctx), ctx.timeout(), create_atom_v, std::move(m)));
  });

  // Paginated from the project index: `limit` (default 100, at most 1000) projects after
  // `cursor` (the next_cursor of the page before; absent = from the start), by name.
  svr.Get("/api/projects", [&ctx](const httplib::Request& req, httplib::Response& res) {
    uint64_t limit = 0;
    if (!query_u64(req, res, "limit", 100, 1, 1000, limit)) return;
    auto cursor = req.get_param_value("cursor");
    if (req.has_param("cursor") && !check_name(cursor).valid)
      return reply_error(res, errc::invalid_request, "cursor: not a cursor this list gave (a project name)");
    auto page = ask<project_page>(ctx.sys, projects(ctx), ctx.timeout(), list_atom_v, cursor, limit);
    if (!page) return reply_error(res, page.error());
    json arr = json::array();
    for (auto& p : page->projects) arr.push_back(to_json(p));
    reply_json(res, 200, {{"projects", std::move(arr)},
                          {"next_cursor", page->next_cursor.empty() ? json(nullptr) : json(page->next_cursor)}});
  });

  svr.Get(one, [&ctx](const httplib::Request& req, httplib::Response& res) {
    std::string name;
    if (!path_name(req, res, name)) return;
    reply_view(res, 200, ask<project_view>(ctx.sys, projects(ctx), ctx.timeout(), get_atom_v, name));
  });

  svr.Put(one, [&ctx](const httplib::Request& req, httplib::Response& res) {
    std::string name;
    manifest m;
    if (!path_name(req, res, name) || !body_manifest(req, res, m)) return;
    if (m.name != name)
      return reply_error(res, errc::invalid_manifest, "name: must match the project in the path");
    reply_view(res, 200, ask<project_view>(ctx.sys, projects(ctx), ctx.timeout(), update_atom_v, name, std::move(m)));
  });

  svr.Delete(one, [&ctx](const httplib::Request& req, httplib::Response& res) {
    std::string name;
    if (!path_name(req, res, name)) return;
    auto deleted = ask<bool>(ctx.sys, projects(ctx), ctx.timeout(), delete_atom_v, name);
    if (!deleted) return reply_error(res, deleted.error());
    reply_json(res, 200, {{"deleted", name}});
  });

  svr.Post(R"(/api/projects/([^/]+)/preview/(start|stop|restart))",
           [&ctx](const httplib::Request& req, httplib::Response& res) {
             std::string name;
             if (!path_name(req, res, name) || !no_body(req, res)) return;
             // Starting waits for the health check, which the manifest may allow a minute: the
             // worker serves other requests meanwhile.
             long_wait waiting;
             if (!may_wait_long(waiting, res)) return;
             auto timeout = std::max(ctx.timeout(), std::chrono::milliseconds(180000));
             reply_view(res, 200, ask<preview_view>(ctx.sys, projects(ctx), timeout, preview_atom_v, name,
                                                    std::string(req.matches[2])));
           });

  svr.Get(R"(/api/projects/([^/]+)/events)", [&ctx](const httplib::Request& req, httplib::Response& res) {
    std::string name;
    uint64_t from = 0, limit = 0;
    int64_t until_us = 0;
    if (!path_name(req, res, name) || !query_u64(req, res, "from", 0, 0, UINT64_MAX, from) ||
        !query_u64(req, res, "limit", 1000, 1, 10000, limit) ||
        !query_time(req, res, "until", INT64_MAX, until_us))
      return;
    auto events = ask<std::vector<event_record>>(ctx.sys, projects(ctx), ctx.timeout(), events_atom_v,
                                                 name, from, limit);
    if (!events) return reply_error(res, events.error());
    if (events->empty() && from == 0)
      return reply_error(res, errc::not_found, "no project named '" + name + "' has ever existed");
    json arr = json::array();
    // The log's times never go backwards: the events up to `until` are a prefix of the page.
    for (auto& e : *events) {
      if (e.ts_us > until_us) break;
      arr.push_back(to_json(e));
    }
    reply_json(res, 200, {{"events", arr}});
  });
}

}  // namespace berth::http
