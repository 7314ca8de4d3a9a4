// Plan vocabulary: what a deploy would change, answered without changing anything (no event,
// no release folder, no process). POST /api/projects/{name}/deployments {"dry_run": true}.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/meta/type_name.hpp>
#include <nlohmann/json.hpp>

namespace berth {

struct plan_request {
  bool build = false;  // also build in a scratch workspace and diff the release's files
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, plan_request& x) {
  return f(caf::meta::type_name("plan_request"), x.build);
}

// One manifest difference that takes effect on deploy. Secret values never appear: a secret
// shows as added, removed or changed, by name only.
struct manifest_change {
  std::string field;   // "production.command", "env.API_URL", "secrets.TOKEN", "production.canary" ...
  std::string change;  // added | removed | changed
  nlohmann::json before, after;  // null for secrets and for the side that has none
};

// One file of the release that would differ from the current release.
struct file_change {
  std::string path;
  std::string change;  // added | removed | changed
  int64_t size_before = -1, size_after = -1;  // -1: none
};

struct plan_view {
  std::string project;
  std::string current;                // the release serving now ("" none)
  std::string current_source_hash;    // the source the current release was built from ("" unknown)
  std::string source_hash;            // the source now
  bool source_changed = false;
  std::vector<manifest_change> manifest;
  bool built = false;                 // --build ran
  std::string release_hash;           // the release the build would make (built only)
  bool release_changed = false;       // differs from current (built only)
  std::vector<file_change> files;     // against current (built only)
  std::vector<std::string> notes;     // what the plan could not tell, in words
};

nlohmann::json to_json(const plan_view& p);

}  // namespace berth

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(berth::plan_view)
