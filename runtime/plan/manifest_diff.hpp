// The manifest differences that take effect on deploy, between the manifest a release was
// deployed with and the manifest now, both in their JSON form without secret values
// (to_json(m, false)). Pure functions; no I/O.
//
// Compared, each as one field: source, build.command, build.artifacts, build.secrets,
// build.limits, production.command, production.health, production.limits, production.keep,
// production.replicas, production.canary, runtime (absent = "process"), image, volumes,
// domains; then every env key (values shown) and every secret by name (values never: a changed
// value is seen through the digests alone). Preview settings are not compared: a deploy does not
// use them. Absent, null, {} and [] are the same (no value).
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "messages/plan.hpp"

namespace berth {

// One manifest side: its JSON form and its secrets' digests (deployed_with.hpp).
struct manifest_side {
  nlohmann::json manifest = nlohmann::json::object();
  // name -> digest; a name without a digest (or `digests_known` false) compares by name only.
  std::map<std::string, std::string> digests;
  bool digests_known = false;
};

// The JSON form run through parse_manifest (as read back from the log) and to_json again, so
// that a manifest recorded by an older berth compares field by field with one made now; the
// input as it is when it does not parse.
nlohmann::json normalized_manifest(const nlohmann::json& recorded);

// Changes from `before` to `after`, in the order of the fields above (env and secrets sorted
// by name). `secrets_unknown` (optional) receives the names present on both sides whose values
// could not be compared (a digest missing on either side).
std::vector<manifest_change> diff_manifests(const manifest_side& before, const manifest_side& after,
                                            std::vector<std::string>* secrets_unknown = nullptr);

}  // namespace berth
