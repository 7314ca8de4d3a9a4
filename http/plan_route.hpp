// POST /api/projects/{name}/deployments {"dry_run": true, "build"?: bool, "force"?: bool}: the
// plan of a deploy (messages/plan.hpp), answered 200 with what would change; nothing is queued
// or written. routes_deployments.cpp hands such bodies here.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "http/server.hpp"
#include "messages/plan.hpp"

namespace berth {
// {project, dry_run, changed, current, deployed_by, first_deploy, source {hash, current,
// changed}, manifest {known, changes [{field, change, before?, after?}]}, build (null without
// --build; else {ok, release_hash, current, changed, files [{path, change, size_before,
// size_after}]} or {ok: false, error {code, message}, log}), notes}. No secret value: secret
// changes carry no before/after.
nlohmann::json to_json(const plan_view& p);
}  // namespace berth

namespace berth::http {

// Whether `body` asks for a plan rather than a deploy: a dry_run other than false, or a build.
bool wants_plan(const nlohmann::json& body);
// Validates the body (dry_run must be true, build and force booleans; build needs dry_run),
// asks production:<name> for the plan (waiting as long as a build may take, off the worker
// pool) and answers 200 with it, or the error (400, 404, 503 ...).
void reply_plan(const context& ctx, const std::string& name, const nlohmann::json& body, httplib::Response& res);

}  // namespace berth::http
