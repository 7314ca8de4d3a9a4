// Plan vocabulary: what a deploy would change, answered without changing anything (no event,
// no release folder, no process left, no port leased). POST /api/projects/{name}/deployments
// {"dry_run": true, "build": bool}; `berth plan NAME [--build]`. Made by runtime/plan/plan.hpp,
// rendered by http/render_plan.hpp.
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
  bool force = false;  // the deploy asked about would be forced (only changes what the notes say)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, plan_request& x) {
  return f(caf::meta::type_name("plan_request"), x.build, x.force);
}

// One manifest difference that takes effect on deploy. Secret values never appear: a secret
// shows as added, removed or changed, by name only (before and after stay null).
struct manifest_change {
  std::string field;   // "production.command", "env.API_URL", "secrets.TOKEN", "production.canary" ...
  std::string change;  // added | removed | changed
  nlohmann::json before, after;  // null for secrets and for the side that has none
};

// One entry of the release that would differ from the current release's folder. Directories
// show (path ending in '/') only when nothing listed below them explains the difference.
struct file_change {
  std::string path;
  std::string change;  // added | removed | changed
  int64_t size_before = -1, size_after = -1;  // bytes of a regular file; -1: none (or not a file)
};

struct plan_view {
  std::string project;
  std::string current;                // the release serving now ("" none: a first deploy)
  std::string deployed_by;            // the deployment that made it current ("" unknown)
  std::string current_source_hash;    // the source the current release was built from ("" unknown)
  std::string source_hash;            // the source now (what a deploy would snapshot)
  bool source_changed = false;
  bool manifest_known = false;        // the current release's manifest was recorded (or there is none)
  std::vector<manifest_change> manifest;
  bool built = false;                 // --build ran (see build_error)
  std::string build_error_code;       // "" when the scratch build succeeded
  std::string build_error;
  std::vector<std::string> build_log; // the build's last log lines (masked), when it failed
  std::string release_hash;           // the release the build would make (built, no error)
  bool release_changed = false;       // differs from current (built, no error)
  std::vector<file_change> files;     // against current (built, no error)
  std::vector<std::string> notes;     // what the plan could not tell, or what a deploy would do, in words

  // Whether a deploy would change anything that the plan can see.
  bool changes() const {
    return current.empty() || source_changed || !manifest.empty() || release_changed;
  }
};

}  // namespace berth

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(berth::plan_view)
