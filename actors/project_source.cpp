#include "actors/project_source.hpp"

#include <spdlog/spdlog.h>

#include "actors/append.hpp"
#include "actors/blocking.hpp"
#include "messages/errors.hpp"
#include "runtime/files/fs_util.hpp"
#include "runtime/logs/logging.hpp"
#include "runtime/workspace/tree_change.hpp"
#include "runtime/workspace/tree_hash.hpp"

namespace berth {

namespace fs = std::filesystem;

namespace {

using self_ptr = caf::stateful_actor<project_actor_state>*;

const fs::file_time_type process_started = fs::file_time_type::clock::now();

fs::path uploads_dir(const project_paths& p) { return p.root / ".uploads"; }

// What a change's worker leaves for the actor.
struct change_result {
  status outcome;
  tree_listing tree;
  bool partial = false;  // the change failed half-way: `tree` is what the live tree now holds
};

tree_change to_tree_change(const source_change& c) {
  tree_change t;
  t.what = c.op == "upload"  ? tree_change::kind::replace_tree
           : c.op == "write" ? tree_change::kind::write_file
                             : tree_change::kind::delete_file;
  t.path = c.path;
  t.staging = c.staging;
  t.mode = c.mode;
  return t;
}

caf::error refusal(const status& s) {
  switch (s.which()) {
    case status::code::invalid_argument: return make_error(errc::invalid_request, s.message());
    case status::code::not_found: return make_error(errc::not_found, s.message());
    case status::code::no_space: return storage_failure(true, s.message());
    default: return storage_failure(false, s.message());
  }
}

// Records the tree, then answers with it.
void record_tree(self_ptr self, const tree_listing& tree, const std::string& via, const std::string& path,
                 std::function<void(source_view)> then) {
  auto& st = self->state;
  std::vector<new_event> events{
      {project_stream(st.env.project), ev::source_updated, source_updated_data(tree.hash, tree.files, tree.bytes, via, path)}};
  append_events(self, std::move(events), true, "project " + st.env.project,
                [self, then](std::vector<event_record>& stored) {
                  for (auto& e : stored) self->state.note(e);
                  then(self->state.project.source);
                });
}

}  // namespace

bool sweep_uploads(const project_paths& paths) {
  bool begun = false;
  if (auto s = sweep_staging(uploads_dir(paths), process_started, &begun); !s)
    log_kv(spdlog::level::warn, "reconcile: uploads folder: " + s.message(), project_fields(paths.root.filename().string()));
  return begun;
}

caf::result<source_view> change_source(self_ptr self, source_change c) {
  auto& st = self->state;
  auto paths = st.env.paths;
  if (!st.project.spec.source_workspace) {
    if (!c.staging.empty()) fsutil::force_remove(c.staging);
    return make_error(errc::conflict, std::string("its source lives elsewhere (source.") +
                                          st.project.spec.source_kind() +
                                          "): uploads and file edits are for workspace projects");
  }
  if (c.op != "upload" && c.op != "write" && c.op != "delete") {
    if (!c.staging.empty()) fsutil::force_remove(c.staging);
    return make_error(errc::invalid_request, "unknown source change '" + c.op + "'");
  }
  auto rp = self->make_response_promise<source_view>();
  auto result = std::make_shared<change_result>();
  auto owner = st.env.sandbox;
  run_blocking(
      self,
      [=] {
        auto live = paths.preview_src;
        std::lock_guard<std::mutex> lock(workspace_lock(live));
        // The staging folder goes whatever happens (tree_change.hpp).
        result->outcome = apply_tree_change(live, to_tree_change(c), owner);
        if (!result->outcome) {
          auto code = result->outcome.which();
          if (code == status::code::io_error || code == status::code::no_space)
            result->partial = hash_tree(live, &result->tree, hash_cache_for(live).get()).is_ok();
          return;
        }
        result->outcome = hash_tree(live, &result->tree, hash_cache_for(live).get());
      },
      [=](const std::string& failure) mutable {
        if (!failure.empty()) {
          rp.deliver(make_error(errc::internal, failure));
          return;
        }
        if (!result->outcome) {
          auto err = refusal(result->outcome);
          // A disk failure half-way changed part of the tree: the log says what it now holds.
          if (result->partial && result->tree.hash != self->state.project.source.hash)
            return record_tree(self, result->tree, "partial", c.path, [rp, err](source_view) mutable { rp.deliver(err); });
          rp.deliver(err);
          return;
        }
        record_tree(self, result->tree, c.op, c.op == "upload" ? "" : c.path,
                    [rp](source_view v) mutable { rp.deliver(std::move(v)); });
      });
  return rp;
}

void recover_source(self_ptr self, std::function<void(const std::string&)> then) {
  auto& st = self->state;
  auto paths = st.env.paths;
  auto owner = st.env.sandbox;
  bool workspace = st.project.spec.source_workspace;
  auto result = std::make_shared<change_result>();
  auto finished = std::make_shared<size_t>(0);
  run_blocking(
      self,
      [=] {
        std::error_code ec;
        if (!fs::exists(uploads_dir(paths), ec)) return;
        auto live = paths.preview_src;
        std::lock_guard<std::mutex> lock(workspace_lock(live));
        std::vector<tree_change> done;
        result->outcome = finish_pending(uploads_dir(paths), live, owner, process_started, &done);
        *finished = done.size();
        if (result->outcome && !done.empty() && workspace)
          result->outcome = hash_tree(live, &result->tree, hash_cache_for(live).get());
      },
      [=](const std::string& failure) {
        if (!failure.empty()) return then(failure);
        if (!result->outcome) return then("finishing an interrupted source change: " + result->outcome.message());
        if (*finished == 0 || !workspace) return then("");
        log_kv(spdlog::level::info, "finished " + std::to_string(*finished) + " interrupted source change(s)",
               project_fields(self->state.env.project));
        record_tree(self, result->tree, "recovered", "", [then](source_view) { then(""); });
      },
      while_blocked::hold);
}

}  // namespace berth
