// preparing, building and packaging: from the project's source to an immutable release folder.
#include <fmt/format.h>

#include "messages/deployment.hpp"
#include "runtime/logs/mask.hpp"
#include "runtime/logs/rotated_log.hpp"
#include "runtime/logs/output_pipe.hpp"
#include "runtime/pipeline/job.hpp"
#include "runtime/release/package_build.hpp"
#include "runtime/release/release.hpp"
#include "runtime/release/source.hpp"
#include "runtime/workspace/tree_change.hpp"
#include "runtime/workspace/workspace_snapshot.hpp"

namespace berth::pipeline {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr auto output_poll = 100ms;  // the longest wait for the build's output before its exit is looked at

// The build's exit: its code, 128 + the signal that killed it, or -1 when unknown.
int exit_code_of(const instance_status& end) {
  if (end.signal > 0) return 128 + end.signal;
  return end.exit_code;
}

}  // namespace

namespace {

// A workspace (preview/src, edited live) copied in one consistent pass, while no upload or file
// write changes it (they take the same lock); the preview or a person may still be writing.
void snapshot_live_tree(job& j, const fs::path& workspace, tree_listing* tree) {
  auto live = j.in.paths.preview_src;
  j.log().line("snapshotting the workspace (preview/src)");
  status s;
  {
    std::lock_guard<std::mutex> lock(workspace_lock(live));
    s = snapshot_workspace(live, workspace, hash_cache_for(live).get(), &j.sources, tree);
  }
  if (is_source_busy(s)) j.fail("source_busy", "the workspace kept changing while it was copied: " + s.message());
  if (!s) j.fail("source_failed", "cannot snapshot the workspace: " + s.message());
}

}  // namespace

fs::path prepare_source(job& j) {
  auto workspace = j.in.paths.build_workspace(j.in.id);
  if (auto s = make_dirs({j.in.paths.builds}); !s) j.fail("source_failed", s.message());
  auto& m = j.in.spec;
  tree_listing tree;
  if (m.source_workspace) {
    snapshot_live_tree(j, workspace, &tree);
  } else {
    j.log().line("snapshotting " +
                 (m.source_git.empty() ? m.source_path : mask_url_credentials(m.source_git) + " @ " + m.source_ref));
    if (auto s = snapshot_source(m.source_path, m.source_git, m.source_ref, workspace, default_git_timeout,
                                 j.in.git_credential, &j.sources); !s)
      j.fail("source_failed", "cannot snapshot the source: " + s.message());
    // The snapshot's content hash: what this release was built from, comparable across deploys.
    auto cache = m.source_path.empty() ? nullptr : hash_cache_for(m.source_path);
    if (auto s = hash_tree(workspace, &tree, cache.get(), &j.sources); !s)
      j.fail("source_failed", "cannot hash the source: " + s.message());
  }
  j.resources["source_hash"] = tree.hash;
  j.log().line(fmt::format("source {} ({} files, {} bytes)", tree.hash.substr(0, 12), tree.files, tree.bytes));
  return workspace;
}

void build(job& j, const fs::path& workspace) {
  auto& m = j.in.spec;
  if (m.build_command.empty()) {
    j.log().line("no build.command: the artifacts are taken from the source as they are");
    j.resources["build_ms"] = 0;
    j.resources["build_us"] = 0;
    return;
  }
  // The build writes into a pipe, not the log file: its output is cut into lines and masked
  // (deploy_log::build_output) before any of it is stored, so a secret it prints never
  // reaches the disk.
  std::unique_ptr<output_pipe> pipe;
  if (auto s = output_pipe::create(j.in.paths.builds / (j.in.id + ".output"), &pipe); !s)
    j.fail("build_failed", "the build could not run: " + s.message());
  instance_spec spec;
  spec.labels = {j.in.project, "build", ""};
  spec.workdir = workspace;
  spec.command = m.build_command;
  spec.env = j.in.build_env;
  spec.log = pipe->path();
  spec.limits = effective_limits(m.build_limits, "build");
  spec.sandbox = {true, j.in.sandbox, {}, {workspace}, j.in.paths.app_data("build")};
  j.log().line("running the build: " + fmt::format("{}", fmt::join(m.build_command, " ")));
  masked_lines output(j.log().mask());
  auto t0 = clock_type::now();
  instance_ref build;
  if (auto s = j.tools.driver.start(spec, &build); !s) j.fail("build_failed", "the build could not run: " + s.message());
  exit_watch watch(j.tools.driver, build);
  std::optional<instance_status> end;
  while (!end) {
    j.log().build_output(output.feed(pipe->read_for(output_poll)));
    end = watch.wait_for(0ms);
    if (end) break;
    if (clock_type::now() - t0 > j.in.build_timeout) {
      j.tools.driver.stop(build, 1000ms);
      j.fail("build_timeout", fmt::format("the build did not finish within {} s", j.in.build_timeout.count()));
    }
    if (j.give_up()) {
      j.tools.driver.stop(build, 1000ms);
      j.log().line("the build was stopped");
      j.gave_up();
    }
  }
  j.tools.driver.stop(build, 1000ms);  // background children it left behind
  j.log().build_output(output.feed(pipe->drain()));
  if (auto rest = output.flush()) j.log().build_output({*rest});
  record_duration(j, "build", t0);
  if (end->oom)
    j.fail("build_failed", fmt::format("the build ran out of memory: it went over its {} MB memory limit "
                                       "(build.limits.memory_mb) and was killed",
                                       spec.limits.memory_mb));
  if (auto code = exit_code_of(*end); code != 0)
    j.fail("build_failed", fmt::format("the build exited with code {}", code));
  j.log().line(fmt::format("build finished in {} ms", ms_since(t0)));
}

bool is_unchanged(const job& j, const std::string& hash) { return hash == j.in.current && !j.in.force; }

std::string package(job& j, const fs::path& workspace) {
  auto artifacts = j.in.spec.artifacts.empty() ? std::vector<std::string>{"."} : j.in.spec.artifacts;
  auto t0 = clock_type::now();
  package_report r;
  auto wanted = [&j](const std::string& hash) { return !is_unchanged(j, hash); };
  if (auto s = package_build(workspace, artifacts, &j.sources, j.in.paths.production, wanted, &r); !s)
    j.fail("package_failed", "cannot package the artifacts: " + s.message());
  auto hash = r.hash;
  j.log().line("release hash " + hash);
  j.resources["hash"] = hash;
  if (is_unchanged(j, hash)) {
    j.log().line("same as the current release: nothing to do (deploy with force to redo it)");
    return hash;
  }
  if (!r.created) {
    j.log().line("release " + hash + " is already on disk");
    return hash;
  }
  j.log().line(fmt::format("packaged release {} in {} ms: {} files, {} not re-read, {} hard-linked from the previous "
                           "release, {} copied ({} MB read, {} MB written)",
                           hash, ms_since(t0), r.files, r.unread, r.linked, r.copied, r.bytes_read >> 20,
                           r.bytes_written >> 20));
  // Its files reach the disk while the candidate boots; the log learns of it at activation.
  j.packaged = hash;
  j.packaged_synced = std::async(std::launch::async, sync_release, j.in.paths.production, hash);
  j.undo.push("remove release " + hash, [&j, hash] {
    if (j.packaged_synced.valid()) j.packaged_synced.wait();
    if (auto s = remove_release(j.in.paths.production, hash); !s)
      return j.log().line("error: cannot remove release " + hash + ": " + s.message());
    remove_rotated_log(j.in.paths.release_log(hash).string());  // its candidate's output
    j.log().line("removed the incomplete release " + hash);
  });
  return hash;
}

void record_packaged(job& j) {
  if (j.packaged.empty()) return;
  if (auto s = j.packaged_synced.get(); !s)
    j.fail("package_failed", "release " + j.packaged + " did not reach the disk: " + s.message());
  j.add_event(ev::release_packaged, {{"hash", j.packaged}, {"deployment", j.in.id}});
}

}  // namespace berth::pipeline
