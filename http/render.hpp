// JSON made of typed views: every answer of the control endpoint (and `berth audit replay`'s
// state) is rendered here, and only here.
#pragma once
#include <nlohmann/json.hpp>

#include "messages/deployment.hpp"
#include "messages/project_state.hpp"
#include "messages/source.hpp"
#include "messages/views.hpp"

namespace berth {

struct tree_listing;

nlohmann::json to_json(const deployment_record& d);
// `current`: what production/current points at; `active`: current and serving now.
nlohmann::json to_json(const release_record& r, bool current, bool active);
nlohmann::json history_json(const production_record& s);
nlohmann::json to_json(const history_view& h);

nlohmann::json to_json(const production_view& v);
nlohmann::json to_json(const preview_view& v);
// A deployment with its queue position and URLs; `log` only when the view carries it (a
// detail answer).
nlohmann::json to_json(const deployment_view& v, bool with_log);
nlohmann::json to_json(const project_view& v);
// A workspace tree as recorded: {hash, files, bytes, via, path?, seq, updated_at}.
nlohmann::json to_json(const source_view& v);
nlohmann::json to_json(const proxy_view& v);
// The project as `berth audit replay` prints it: its own fields (as GET /api/projects/{name}),
// preview, production (releases kept), last_deployment and last_event.
nlohmann::json to_json(const project_state& s);
// GET /api/projects/{name}/state?at=: the same, plus `at` and `deleted`.
nlohmann::json to_json(const state_view& v);

// GET /api/projects/{name}/source (render_source.cpp): the live tree {hash, files, bytes,
// entries: [{path, type (file|dir|link), size, mode ("0644"), sha256 (files), target (links)}]}
// and `recorded`, the last source_updated (null when none, i.e. `recorded` has no hash).
nlohmann::json to_json(const tree_listing& live, const source_view* recorded);

}  // namespace berth
