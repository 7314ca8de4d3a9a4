// GET /api/projects/{name}/logs: an environment's runtime log as an event stream (contract 1
// in README "Logs"). Everything is validated before the stream starts: the parameters, the
// project (asked of the projects actor) and the release (one it keeps); then http/log_stream
// reads the log by logical offset and, with follow=1, is woken by the log watcher.
#include <httplib.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "http/log_stream.hpp"
#include "http/reply.hpp"
#include "http/route_util.hpp"
#include "http/server.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "messages/views.hpp"
#include "runtime/files/layout.hpp"
#include "runtime/release/release.hpp"

namespace berth::http {

namespace {

constexpr uint64_t max_tail = 10000;
constexpr uint64_t default_tail = 100;

// The start offset: ?offset=, else the Last-Event-ID header (an EventSource reconnecting);
// false after an invalid_request reply. `given` false: neither was sent.
bool start_offset(const httplib::Request& req, httplib::Response& res, bool& given, uint64_t& offset) {
  given = req.has_param("offset");
  if (given) return query_u64(req, res, "offset", 0, 0, UINT64_MAX, offset);
  if (!req.has_header("Last-Event-ID")) return true;
  auto text = req.get_header_value("Last-Event-ID");
  given = true;
  try {
    size_t used = 0;
    if (!text.empty() && text[0] != '-' && (offset = std::stoull(text, &used), used == text.size())) return true;
  } catch (...) {
  }
  reply_error(res, errc::invalid_request, "header 'Last-Event-ID' must be a log offset (an integer)");
  return false;
}

// Which file holds the log asked for; false after an error reply (404 for an unknown project
// or release, or a production without a release yet).
bool log_path(const context& ctx, httplib::Response& res, const std::string& name, const std::string& env,
              std::string release, std::string& path) {
  // One question answers both: the project exists (else not_found), and its releases.
  auto h = ask<history_view>(ctx.sys, projects(ctx), ctx.timeout(), production_atom_v, name, std::string("history"));
  if (!h) {
    reply_error(res, h.error());
    return false;
  }
  auto paths = paths_for(ctx.cfg.data_dir, name);
  if (env == "preview") {
    path = paths.preview_log().string();
    return true;
  }
  if (release.empty()) release = h->current;
  if (release.empty()) {
    reply_error(res, errc::not_found, "project '" + name + "' has no production release yet; deploy it first");
    return false;
  }
  bool kept = std::any_of(h->releases.begin(), h->releases.end(), [&](auto& r) { return r.hash == release; });
  if (!kept) {
    reply_error(res, errc::not_found, "project '" + name + "' has no release " + release + " (see production/history)");
    return false;
  }
  path = paths.release_log(release).string();
  // A release started by a berth from before per-release logs still writes production.log.
  if (!rotated_log_exists(path) && rotated_log_exists(paths.production_log().string()))
    path = paths.production_log().string();
  return true;
}

void stream_logs(const context& ctx, const httplib::Request& req, httplib::Response& res) {
  std::string name;
  if (!path_name(req, res, name)) return;
  auto env = req.has_param("env") ? req.get_param_value("env") : std::string("production");
  if (env != "production" && env != "preview")
    return reply_error(res, errc::invalid_request, "query parameter 'env' must be production or preview");
  std::string release = req.has_param("release") ? req.get_param_value("release") : "";
  if (req.has_param("release") && !valid_release_hash(release))
    return reply_error(res, errc::invalid_request,
                       "query parameter 'release' must be a release hash (12 lowercase hex characters)");
  if (!release.empty() && env != "production")
    return reply_error(res, errc::invalid_request, "query parameter 'release' applies to env=production only");
  uint64_t follow = 0, tail = 0, offset = 0;
  bool has_offset = false;
  if (!query_u64(req, res, "follow", 0, 0, 1, follow) || !query_u64(req, res, "tail", default_tail, 0, max_tail, tail) ||
      !start_offset(req, res, has_offset, offset))
    return;
  // A stream waits for new lines for as long as it is followed: not on a worker's slot.
  auto waiting = std::make_shared<stream_slot>();
  if (!may_stream(*waiting, res)) return;
  std::string path;
  if (!log_path(ctx, res, name, env, release, path)) return;

  log_request r;
  r.follow = follow == 1;
  auto snap = log_snapshot::take(path);
  if (!has_offset) {
    r.start = r.gap_from = snap.tail_start(static_cast<size_t>(tail));
  } else if (snap.locate(offset) == log_snapshot::place::past) {
    return reply_error(res, errc::invalid_request,
                       "offset " + std::to_string(offset) + " is past the end of the log (" + std::to_string(snap.end()) +
                           " bytes written)");
  } else {
    r.gap_from = offset;
    r.start = std::max(offset, snap.oldest());  // older bytes were rotated away: a gap first
  }
  // Secrets as they are now, read per request (runtime/logs/mask.hpp).
  secret_mask mask(read_secrets_file(paths_for(ctx.cfg.data_dir, name)));
  auto stream = std::make_shared<log_stream>(ctx, path, std::move(mask), r);
  serve_event_stream(res, waiting, [stream](httplib::DataSink& sink) { return stream->step(sink); });
}

}  // namespace

void add_log_routes(httplib::Server& svr, const context& ctx) {
  svr.Get(R"(/api/projects/([^/]+)/logs)",
          [&ctx](const httplib::Request& req, httplib::Response& res) { stream_logs(ctx, req, res); });
}

}  // namespace berth::http
