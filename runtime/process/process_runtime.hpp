// The runtime driver for OS processes (runtime/driver.hpp), on top of process_driver.
//
// An instance is a process group led by the started process; its identity is
// process_instance_id(pid, start time, pgid) (messages/instance.hpp). An id that does not
// parse names nothing: gone for inspect(), ok for stop(). Labels travel in the child's
// environment (BERTH_PROJECT, BERTH_ENV, BERTH_RELEASE, with BERTH_DATA_DIR so that another
// berth on the host is told apart), which is how list() finds what an earlier berth started;
// processes from before labels are found by their working directory under the project's
// folders in the data dir.
//
// Limits (instance_spec::limits) are applied with one cgroup per instance (runtime/process/
// cgroup.hpp) when `cgroup_root` allows it ("auto", or a delegated cgroup v2 folder; "" or
// "off": never): the child joins it before exec; an instance killed by the OOM killer ends with
// instance_status::oom; usage() reads the group; stop() kills whatever is left in it.
// A spec whose sandbox is enabled runs confined (runtime/process/sandbox.hpp) when the runtime
// was made with a sandbox: the started process is then bubblewrap, with the labels on it; the
// program is looked up before anything starts (a missing one is not_found, as without sandbox).
// stop() of a sandbox sends SIGTERM to the app inside rather than to bwrap; an exit watch on a
// sandbox kills what is left of its group once bwrap has ended.
#pragma once
#include <memory>
#include <string>

#include "runtime/driver.hpp"
#include "runtime/process/process_driver.hpp"
#include "runtime/process/sandbox.hpp"

namespace berth {

namespace detail {
class instance_groups;
}

class process_runtime final : public runtime_driver {
 public:
  explicit process_runtime(std::string data_dir, const std::string& cgroup_root = "", sandbox_options sandbox = {});
  const char* name() const override { return "process"; }

  status prepare(const instance_spec& spec, const std::function<void(const std::string&)>& output,
                 const std::function<bool()>& cancelled, artifact* out) override;
  status remove_artifact(const instance_labels& labels) override;
  status start(const instance_spec& spec, instance_ref* out) override;
  status stop(const instance_ref& ref, std::chrono::milliseconds grace) override;
  instance_status inspect(const instance_ref& ref) const override;
  std::vector<instance_ref> list(const instance_labels& filter) const override;
  uint64_t watch(const instance_ref& ref, exit_callback on_exit) override;
  void unwatch(uint64_t token) override;
  std::vector<std::string> logs(const instance_spec& spec, const instance_ref& ref, size_t lines) const override;
  status usage(const instance_ref& ref, resource_usage* out) const override;
  std::string limits_unavailable() const override;

 private:
  std::string data_dir_;
  std::string data_dir_label_;     // BERTH_DATA_DIR of what it starts
  sandbox_options sandbox_;        // read-only after construction
  mutable process_driver driver_;  // stateless: the children table is process-wide
  std::shared_ptr<detail::instance_groups> groups_;  // shared with exit watches
};

std::shared_ptr<runtime_driver> make_process_runtime(std::string data_dir, const std::string& cgroup_root = "",
                                                     sandbox_options sandbox = {});

}  // namespace berth
