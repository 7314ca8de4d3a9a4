// The pipeline's preparing and building steps (runtime/pipeline/job.hpp) driven with a host that
// records nothing and leases nothing: the same code as a deploy, aimed at a scratch folder.
#include "runtime/plan/scratch_build.hpp"

#include <fmt/format.h>

#include "runtime/files/fs_util.hpp"
#include "runtime/pipeline/job.hpp"
#include "runtime/plan/file_diff.hpp"

namespace berth {

namespace {

namespace fs = std::filesystem;

// What the steps may ask of their owner. preparing and building only poll stop_requested; the
// rest would be a deploy's, and a plan refuses them rather than touching the project.
class plan_host final : public deploy_host {
 public:
  explicit plan_host(std::function<bool()> stopped) : stopped_(std::move(stopped)) {}
  status record(std::vector<new_event>, bool) override { return status::io_error("a plan records nothing"); }
  // The build's wait gives up (and stops it) once the plan's owner is gone.
  stop_request stop_requested() const override {
    return stopped_ && stopped_() ? stop_request::abandoned : stop_request::none;
  }
  serving_release serving() override { return {}; }
  status set_route(uint16_t) override { return status::io_error("a plan routes nothing"); }
  status set_split(const traffic_split&) override { return status::io_error("a plan routes nothing"); }
  canary_verdict operator_verdict() const override { return canary_verdict::none; }
  void canary_progress(const canary_status&) override {}
  status lease_port(uint16_t*) override { return status::io_error("a plan leases no port"); }
  void release_port(uint16_t, const std::string&) override {}

 private:
  std::function<bool()> stopped_;
};

// The folders the steps use, inside the scratch folder: the workspace (paths.builds/<id>), the
// build's output pipe and its HOME (paths.root/data/build), so the project's own build HOME is
// not written either. The source (path, git, preview/src) stays the project's.
project_paths scratch_paths(const project_paths& real, const fs::path& scratch) {
  auto p = real;
  p.root = scratch;
  p.builds = scratch;
  return p;
}

}  // namespace

scratch_build_result scratch_build(const scratch_build_request& r, runtime_driver& driver, backend_guards& guards) {
  scratch_build_result out;
  // Beside the releases, named as a temporary folder: a crash leaves it to the next start's
  // tidy-up, and production/builds/ is not made by a plan that comes before any deploy.
  auto scratch = r.paths.production / ("plan.tmp-" + fsutil::random_suffix());
  struct remove_scratch {
    fs::path dir;
    ~remove_scratch() { fsutil::force_remove(dir); }
  } cleanup{scratch};
  {
    deploy_inputs in;
    in.project = r.project;
    in.id = "build";  // the workspace: <scratch>/build
    in.spec = r.spec;
    in.paths = scratch_paths(r.paths, scratch);
    in.build_env = r.build_env;
    in.git_credential = r.git_credential;
    in.sandbox = r.sandbox;
    in.build_timeout = r.build_timeout;
    deploy_log log(scratch / "plan.log");
    log.set_mask(r.mask);
    plan_host host(r.stopped);
    deploy_tools tools{driver, guards, log};
    pipeline::job j{host, tools, in};
    try {
      j.current = phase::preparing;
      j.deadline = pipeline::clock_type::now() + r.build_timeout + std::chrono::seconds(30);
      auto workspace = pipeline::prepare_source(j);
      out.source_hash = j.resources.value("source_hash", "");
      if (r.build) {
        j.current = phase::building;
        pipeline::build(j, workspace);
        j.current = phase::packaging;
        if (auto s = diff_release(workspace, r.spec.artifacts, r.compare_with, &out.release_hash, &out.files); !s)
          j.fail("package_failed", "cannot package the artifacts: " + s.message());
      }
    } catch (const pipeline::failure& f) {
      out.error_code = f.code;
      out.error = f.message;
      out.release_hash.clear();
      out.files.clear();
    } catch (const std::exception& e) {
      out.error_code = "internal";
      out.error = std::string("unexpected error: ") + e.what();
    }
    if (!out.error_code.empty()) out.log = log.last_lines();
  }  // the log is closed before its folder goes
  return out;
}

}  // namespace berth
