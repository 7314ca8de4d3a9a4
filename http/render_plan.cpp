// The plan's JSON (plan_route.hpp), made of the typed plan_view.
#include "http/plan_route.hpp"

namespace berth {

namespace {

using json = nlohmann::json;

json or_null(const std::string& s) { return s.empty() ? json() : json(s); }
json size_or_null(int64_t n) { return n < 0 ? json() : json(n); }

json build_json(const plan_view& p) {
  if (!p.built) return nullptr;
  if (!p.build_error_code.empty())
    return {{"ok", false}, {"error", {{"code", p.build_error_code}, {"message", p.build_error}}}, {"log", p.build_log}};
  json files = json::array();
  for (auto& f : p.files)
    files.push_back({{"path", f.path},
                     {"change", f.change},
                     {"size_before", size_or_null(f.size_before)},
                     {"size_after", size_or_null(f.size_after)}});
  return {{"ok", true},
          {"release_hash", p.release_hash},
          {"current", or_null(p.current)},
          {"changed", p.release_changed},
          {"files", files}};
}

}  // namespace

json to_json(const plan_view& p) {
  json changes = json::array();
  for (auto& c : p.manifest) {
    json one{{"field", c.field}, {"change", c.change}};
    if (!c.before.is_null()) one["before"] = c.before;
    if (!c.after.is_null()) one["after"] = c.after;
    changes.push_back(std::move(one));
  }
  return {{"project", p.project},
          {"dry_run", true},
          {"changed", p.changes()},
          {"current", or_null(p.current)},
          {"deployed_by", or_null(p.deployed_by)},
          {"first_deploy", p.current.empty()},
          {"source",
           {{"hash", or_null(p.source_hash)}, {"current", or_null(p.current_source_hash)}, {"changed", p.source_changed}}},
          {"manifest", {{"known", p.manifest_known}, {"changes", changes}}},
          {"build", build_json(p)},
          {"notes", p.notes}};
}

}  // namespace berth
