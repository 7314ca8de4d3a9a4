// production:<name> answering a plan (runtime/plan/plan.hpp): what its fold says about the
// current release, then the blocking part on a worker. A plan is not a job: it neither waits
// for the queue nor holds it, and it records nothing.
#include <atomic>
#include <memory>

#include "actors/blocking.hpp"
#include "actors/production_detail.hpp"
#include "messages/errors.hpp"
#include "runtime/plan/plan.hpp"

namespace berth::production_detail {

namespace {

std::string string_at(const nlohmann::json& resources, const char* key) {
  auto it = resources.find(key);
  return it != resources.end() && it->is_string() ? it->get<std::string>() : "";
}

// The deployment whose release_activated made the current release current: the last one that
// activated a release (nothing else changes current).
const deployment_record* activator(const production_record& p) {
  if (p.current.empty()) return nullptr;
  for (auto it = p.order.rbegin(); it != p.order.rend(); ++it) {
    auto d = p.deployments.find(*it);
    if (d == p.deployments.end() || !d->second.activated) continue;
    return string_at(d->second.resources, "hash") == p.current ? &d->second : nullptr;
  }
  return nullptr;
}

// What the current release was built from: its activator's snapshot, or (a rollback builds
// nothing) the snapshot of the deployment that packaged it.
std::string current_source_hash(const production_record& p, const deployment_record* by) {
  if (by)
    if (auto h = string_at(by->resources, "source_hash"); !h.empty()) return h;
  auto r = p.releases.find(p.current);
  if (r == p.releases.end()) return "";
  auto d = p.deployments.find(r->second.deployment);
  return d == p.deployments.end() ? "" : string_at(d->second.resources, "source_hash");
}

}  // namespace

caf::result<plan_view> plan(self_ptr self, const plan_request& request) {
  auto& st = self->state;
  auto in = std::make_shared<plan_inputs>();
  in->project = st.env.project;
  in->request = request;
  in->spec = st.spec;
  in->paths = st.env.paths;
  in->sandbox = st.env.sandbox;
  in->build_timeout = std::chrono::seconds(st.env.settings.build_timeout_s);
  in->current = st.prod.current;
  auto* by = activator(st.prod);
  if (by) {
    in->deployed_by = by->id;
    in->resources = by->resources;
  }
  in->current_source_hash = current_source_hash(st.prod, by);
  // When this actor ends (berth stops, or it is restarted) a scratch build stops with it, so
  // that nothing waits for a build nobody will read. (One small functor per plan stays attached
  // for the actor's life: plans are a person's requests, not a stream.)
  auto stopped = std::make_shared<std::atomic<bool>>(false);
  self->attach_functor([stopped] { stopped->store(true); });
  in->stopped = [stopped] { return stopped->load(); };
  auto driver = st.env.driver;
  auto guards = st.env.guards;
  auto view = std::make_shared<plan_view>();
  auto rp = self->make_response_promise<plan_view>();
  run_blocking(
      self, [=] { *view = make_plan(*in, *driver, *guards); },
      [=](const std::string& failure) mutable {
        if (failure.empty()) rp.deliver(std::move(*view));
        else rp.deliver(make_error(errc::internal, "the plan failed: " + failure));
      });
  return rp;
}

}  // namespace berth::production_detail
