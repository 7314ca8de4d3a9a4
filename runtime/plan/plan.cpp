#include "runtime/plan/plan.hpp"

#include <mutex>

#include <fmt/format.h>

#include "runtime/pipeline/deploy.hpp"
#include "runtime/plan/deployed_with.hpp"
#include "runtime/plan/manifest_diff.hpp"
#include "runtime/plan/scratch_build.hpp"
#include "runtime/workspace/tree_change.hpp"
#include "runtime/workspace/tree_hash.hpp"

namespace berth {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A link whose target is absolute: a snapshot rewrites it (relative), so the tree's own hash
// would not be the snapshot's.
bool has_absolute_link(const tree_listing& t) {
  for (auto& e : t.entries)
    if (e.type == 'l' && !e.target.empty() && e.target[0] == '/') return true;
  return false;
}

// The hash of a local source (a path, or the workspace) read where it is, with the hash cache
// deploys use; false when only a snapshot can tell (see has_absolute_link). A failure is noted.
bool hash_in_place(const plan_inputs& in, plan_view* v) {
  fs::path root = in.spec.source_workspace ? in.paths.preview_src : fs::path(in.spec.source_path);
  tree_listing tree;
  status s;
  if (in.spec.source_workspace) {
    std::lock_guard<std::mutex> lock(workspace_lock(root));  // no upload half-applied
    s = hash_tree(root, &tree, hash_cache_for(root).get());
  } else {
    s = hash_tree(root, &tree, hash_cache_for(root).get());
  }
  if (!s) {
    v->notes.push_back("cannot hash the source: " + s.message());
    return true;
  }
  if (has_absolute_link(tree)) return false;
  v->source_hash = tree.hash;
  return true;
}

// The manifest now against the one the current release was deployed with.
void diff_manifest(const plan_inputs& in, const std::map<std::string, std::string>& secrets, plan_view* v) {
  manifest_side after;
  after.manifest = to_json(in.spec, false);
  std::string key;
  auto key_status = secret_digest_key(in.paths, /*create=*/false, &key);
  std::map<std::string, std::string> values;
  for (auto& [name, unused] : in.spec.secrets)
    if (auto it = secrets.find(name); it != secrets.end()) values[name] = it->second;
  after.digests = secret_digests(key, values);
  after.digests_known = static_cast<bool>(key_status);

  manifest_side before;
  if (in.current.empty()) {
    before.digests_known = after.digests_known = true;  // nothing to compare: every secret is added
  } else {
    auto recorded = read_deployed_with(in.resources);
    if (!recorded.known) {
      v->notes.push_back("the current release was deployed before berth recorded manifests: the manifest "
                         "changes cannot be told (the next deploy records them)");
      return;
    }
    before.manifest = normalized_manifest(recorded.manifest);
    before.digests = recorded.digests;
    before.digests_known = recorded.has_digests;
  }
  v->manifest_known = true;
  std::vector<std::string> unknown;
  v->manifest = diff_manifests(before, after, &unknown);
  for (auto& name : unknown)
    v->notes.push_back("secrets." + name + ": whether its value changed cannot be told (" +
                       (key_status ? std::string("no digest of it was recorded") : key_status.message()) + ")");
}

void build_in_scratch(const plan_inputs& in, const std::map<std::string, std::string>& secrets,
                      runtime_driver& driver, backend_guards& guards, plan_view* v) {
  scratch_build_request r;
  r.project = in.project;
  r.spec = in.spec;
  r.paths = in.paths;
  r.build_env = build_environment(in.spec, in.project, secrets);  // as a deploy gives it
  if (auto it = secrets.find(in.spec.source_credentials_secret); it != secrets.end()) r.git_credential = it->second;
  r.sandbox = in.sandbox;
  r.build_timeout = in.build_timeout;
  r.mask = secret_mask(secrets);
  r.build = in.request.build;
  r.stopped = in.stopped;
  if (!in.current.empty()) r.compare_with = in.paths.production / in.current;
  auto b = scratch_build(r, driver, guards);
  v->source_hash = b.source_hash;
  if (!in.request.build) {
    if (!b.error_code.empty()) v->notes.push_back("cannot snapshot the source: " + b.error);
    return;
  }
  v->built = true;
  v->build_error_code = b.error_code;
  v->build_error = b.error;
  v->build_log = b.log;
  v->release_hash = b.release_hash;
  v->files = b.files;
  v->release_changed = b.error_code.empty() && b.release_hash != in.current;
}

void add_outcome_notes(const plan_inputs& in, plan_view* v) {
  if (in.current.empty()) {
    v->notes.push_back("no release yet: a deploy would be the first, and everything is added");
    return;
  }
  if (in.current_source_hash.empty())
    v->notes.push_back("the source the current release was built from is not recorded");
  if (v->built && !v->build_error_code.empty()) {
    v->notes.push_back("the build failed: a deploy would fail in its building phase and production would keep "
                       "serving " + in.current);
  } else if (v->built && !v->release_changed) {
    v->notes.push_back(in.request.force ? "the release would be the current one: a forced deploy restarts it"
                                        : std::string("the release would be the current one: a deploy ends "
                                                      "`unchanged`") +
                                              (v->manifest.empty() ? "" : " and the manifest changes wait for a "
                                                                          "forced deploy"));
  } else if (!v->built && !v->source_changed && !v->manifest.empty() && !in.request.force) {
    v->notes.push_back("the source is unchanged: if the build gives the current release again, a deploy ends "
                       "`unchanged` and the manifest changes wait for a forced deploy (plan --build tells)");
  }
}

}  // namespace

plan_view make_plan(const plan_inputs& in, runtime_driver& driver, backend_guards& guards) {
  plan_view v;
  v.project = in.project;
  v.current = in.current;
  v.deployed_by = in.deployed_by;
  v.current_source_hash = in.current_source_hash;
  try {
    auto secrets = read_secrets_file(in.paths);
    bool local = in.spec.source_git.empty();
    if (in.request.build || !local || !hash_in_place(in, &v)) build_in_scratch(in, secrets, driver, guards, &v);
    // A first deploy adds the source; otherwise it changed only if both hashes are known and differ.
    v.source_changed = !v.source_hash.empty() &&
                       (in.current.empty() || (!in.current_source_hash.empty() && v.source_hash != in.current_source_hash));
    diff_manifest(in, secrets, &v);
    add_outcome_notes(in, &v);
  } catch (const std::exception& e) {
    v.notes.push_back(std::string("the plan stopped: ") + e.what());
  }
  return v;
}

}  // namespace berth
