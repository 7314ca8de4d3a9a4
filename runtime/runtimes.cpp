#include "runtime/runtimes.hpp"

#include <algorithm>

namespace berth {

namespace {
// unwatch() tokens carry the driver they came from in their top bits.
constexpr int token_shift = 60;
constexpr uint64_t token_mask = (uint64_t{1} << token_shift) - 1;
}  // namespace

runtime_set::runtime_set(std::shared_ptr<runtime_driver> process, std::shared_ptr<runtime_driver> docker,
                         std::shared_ptr<runtime_driver> swarm, std::string why_not)
    : process_(std::move(process)), docker_(std::move(docker)), swarm_(std::move(swarm)), why_not_(std::move(why_not)) {}

runtime_driver* runtime_set::by_runtime(const std::string& runtime) const {
  if (runtime.empty() || runtime == "process") return process_.get();
  if (runtime == "docker") return docker_.get();
  if (runtime == "swarm") return swarm_.get();
  return nullptr;
}

std::vector<runtime_driver*> runtime_set::running(const instance_labels& labels) const {
  std::vector<runtime_driver*> out;
  if (labels.runtime == "swarm" && labels.env != "production") out.push_back(docker_.get());
  if (labels.runtime == "swarm" && labels.env.empty()) out.push_back(swarm_.get());
  if (labels.runtime.empty()) out = {process_.get(), docker_.get(), swarm_.get()};
  if (out.empty()) out.push_back(by_runtime(labels.runtime));
  out.erase(std::remove(out.begin(), out.end(), nullptr), out.end());
  return out;
}

std::string runtime_of(const instance_ref& r) {
  if (r.id.rfind("docker:", 0) == 0) return "docker";
  if (r.id.rfind("swarm:", 0) == 0) return "swarm";
  return "process";
}

std::vector<std::string> runtimes_to_sweep(const std::string& manifest_runtime, const instance_ref& recorded) {
  std::vector<std::string> out{manifest_runtime.empty() ? "process" : manifest_runtime};
  if (!recorded.empty() && runtime_of(recorded) != out[0]) out.push_back(runtime_of(recorded));
  return out;
}

runtime_set::which runtime_set::of_id(const std::string& id) const {
  if (id.rfind("docker:", 0) == 0) return docker_i;
  if (id.rfind("swarm:", 0) == 0) return swarm_i;
  return process_i;
}

runtime_driver* runtime_set::at(which w) const {
  switch (w) {
    case docker_i: return docker_.get();
    case swarm_i: return swarm_.get();
    default: return process_.get();
  }
}

std::string runtime_set::runtime_unavailable(const std::string& runtime) const {
  if (by_runtime(runtime)) return "";
  if (runtime != "docker" && runtime != "swarm") return "there is no runtime named '" + runtime + "'";
  return "the " + runtime + " runtime is not available on this server" + (why_not_.empty() ? "" : ": " + why_not_);
}

status runtime_set::prepare(const instance_spec& spec, const std::function<void(const std::string&)>& output,
                            const std::function<bool()>& cancelled, artifact* out) {
  auto* d = by_runtime(spec.labels.runtime);
  if (!d) return status::invalid_argument(runtime_unavailable(spec.labels.runtime));
  return d->prepare(spec, output, cancelled, out);
}

status runtime_set::remove_artifact(const instance_labels& labels) {
  auto* d = by_runtime(labels.runtime);
  return d ? d->remove_artifact(labels) : status::ok();
}

std::vector<std::string> runtime_set::artifacts(const std::string& project) const {
  return docker_ ? docker_->artifacts(project) : std::vector<std::string>{};
}

status runtime_set::remove_project(const std::string& project) {
  status first = status::ok();
  // Swarm first: its service's containers use the project's volumes, which docker removes.
  for (auto* d : {swarm_.get(), docker_.get(), process_.get()})
    if (d)
      if (auto s = d->remove_project(project); !s && first.is_ok()) first = s;
  return first;
}

status runtime_set::start(const instance_spec& spec, instance_ref* out) {
  // Swarm runs production's releases as services; a swarm project's preview is a container
  // on this host.
  auto drivers = running(spec.labels);
  if (drivers.empty()) return status::invalid_argument(runtime_unavailable(spec.labels.runtime));
  return drivers.front()->start(spec, out);
}

status runtime_set::stop(const instance_ref& ref, std::chrono::milliseconds grace) {
  auto* d = at(of_id(ref.id));
  if (!d) return status::io_error("the runtime that started " + ref.id + " is not available on this server");
  return d->stop(ref, grace);
}

instance_status runtime_set::inspect(const instance_ref& ref) const {
  auto* d = at(of_id(ref.id));
  return d ? d->inspect(ref) : instance_status{};
}

std::vector<instance_ref> runtime_set::list(const instance_labels& filter) const {
  std::vector<instance_ref> all;
  for (auto* d : running(filter))
    for (auto& r : d->list(filter)) all.push_back(r);
  return all;
}

uint64_t runtime_set::watch(const instance_ref& ref, exit_callback on_exit) {
  auto w = of_id(ref.id);
  auto* d = at(w);
  if (!d) {  // nothing can tell when it ends: it is gone as far as berth can know
    on_exit(instance_status{});
    return 0;
  }
  return (static_cast<uint64_t>(w) << token_shift) | (d->watch(ref, std::move(on_exit)) & token_mask);
}

void runtime_set::unwatch(uint64_t token) {
  if (auto* d = at(static_cast<which>(token >> token_shift))) d->unwatch(token & token_mask);
}

std::vector<std::string> runtime_set::logs(const instance_spec& spec, const instance_ref& ref, size_t lines) const {
  auto* d = ref.empty() ? by_runtime(spec.labels.runtime) : at(of_id(ref.id));
  return d ? d->logs(spec, ref, lines) : std::vector<std::string>{};
}

status runtime_set::usage(const instance_ref& ref, resource_usage* out) const {
  auto* d = at(of_id(ref.id));
  return d ? d->usage(ref, out) : status::not_found("not running");
}

}  // namespace berth
