#include "runtime/plan/manifest_diff.hpp"

#include <set>
#include <utility>

#include "messages/manifest.hpp"

namespace berth {

namespace {

using json = nlohmann::json;

// The fields a deploy uses, with where they are in the JSON form.
const std::vector<std::pair<const char*, const char*>> deploy_fields = {
    {"source", "/source"},
    {"build.command", "/build/command"},
    {"build.artifacts", "/build/artifacts"},
    {"build.secrets", "/build/secrets"},
    {"build.limits", "/build/limits"},
    {"production.command", "/production/command"},
    {"production.health", "/production/health"},
    {"production.limits", "/production/limits"},
    {"production.keep", "/production/keep"},
    {"production.replicas", "/production/replicas"},
    {"production.canary", "/production/canary"},
    {"runtime", "/runtime"},
    {"image", "/image"},
    {"volumes", "/volumes"},
    {"domains", "/domains"},
};

bool no_value(const json& v) { return v.is_null() || ((v.is_object() || v.is_array()) && v.empty()); }

json value_at(const json& manifest, const char* pointer) {
  json::json_pointer p(pointer);
  json v = manifest.contains(p) ? manifest.at(p) : json();
  // to_json leaves the default runtime out; a side with no manifest at all (a first deploy) has none
  if (std::string(pointer) == "/runtime" && no_value(v) && manifest.contains("name")) v = "process";
  return no_value(v) ? json() : v;
}

// One field's change, if any: added, removed or changed (before/after shown).
void compare(const std::string& field, const json& before, const json& after, std::vector<manifest_change>* out) {
  if (before == after) return;
  const char* change = before.is_null() ? "added" : after.is_null() ? "removed" : "changed";
  out->push_back({field, change, before, after});
}

json object_at(const json& manifest, const char* key) {
  auto it = manifest.find(key);
  return it != manifest.end() && it->is_object() ? *it : json::object();
}

}  // namespace

json normalized_manifest(const json& recorded) {
  auto parsed = parse_manifest(recorded, /*from_log=*/true);
  return parsed.ok ? to_json(parsed.value, false) : recorded;
}

std::vector<manifest_change> diff_manifests(const manifest_side& before, const manifest_side& after,
                                            std::vector<std::string>* secrets_unknown) {
  std::vector<manifest_change> out;
  for (auto& [field, pointer] : deploy_fields)
    compare(field, value_at(before.manifest, pointer), value_at(after.manifest, pointer), &out);

  auto env_before = object_at(before.manifest, "env"), env_after = object_at(after.manifest, "env");
  std::set<std::string> keys;
  for (auto& [k, v] : env_before.items()) keys.insert(k);
  for (auto& [k, v] : env_after.items()) keys.insert(k);
  for (auto& k : keys)
    compare("env." + k, env_before.contains(k) ? env_before[k] : json(), env_after.contains(k) ? env_after[k] : json(),
            &out);

  // Secrets by name; their values only through the digests, and never shown.
  auto secrets_before = object_at(before.manifest, "secrets"), secrets_after = object_at(after.manifest, "secrets");
  std::set<std::string> names;
  for (auto& [k, v] : secrets_before.items()) names.insert(k);
  for (auto& [k, v] : secrets_after.items()) names.insert(k);
  for (auto& name : names) {
    bool was = secrets_before.contains(name), is = secrets_after.contains(name);
    if (was != is) {
      out.push_back({"secrets." + name, was ? "removed" : "added", json(), json()});
      continue;
    }
    auto b = before.digests.find(name), a = after.digests.find(name);
    bool comparable = before.digests_known && after.digests_known && b != before.digests.end() &&
                      a != after.digests.end();
    if (!comparable) {
      if (secrets_unknown) secrets_unknown->push_back(name);
    } else if (b->second != a->second) {
      out.push_back({"secrets." + name, "changed", json(), json()});
    }
  }
  return out;
}

}  // namespace berth
