// production:<name> as the deploy pipeline's host: the pipeline runs on a blocking worker and
// reaches the actor (its events, the serving release), the port allocator and the proxy only
// through deploy_host, implemented here with messages.
#include <spdlog/spdlog.h>

#include "actors/blocking.hpp"
#include "actors/names.hpp"
#include "actors/production_detail.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "runtime/logs/logging.hpp"
#include "runtime/pipeline/deploy_log.hpp"
#include "runtime/release/release.hpp"

namespace berth::production_detail {

namespace {

constexpr auto ask_timeout = std::chrono::seconds(60);

// The release's and the build's environments (deploy.hpp), and the git credential.
void fill_environments(deploy_inputs& in, const std::map<std::string, std::string>& secrets) {
  in.env = release_environment(in.spec, in.project, secrets);
  in.build_env = build_environment(in.spec, in.project, secrets);
  if (auto it = secrets.find(in.spec.source_credentials_secret); it != secrets.end()) in.git_credential = it->second;
}

// Blocking requests from the worker thread.
template <class T, class... Ts>
status ask(caf::actor_system& sys, const caf::actor& to, T* out, Ts&&... xs) {
  if (!to) return status::io_error("the actor is not running");
  status result = status::io_error("no answer");
  caf::scoped_actor self{sys};
  self->request(to, ask_timeout, std::forward<Ts>(xs)...)
      .receive([&](T& v) { *out = std::move(v), result = status::ok(); },
               [&](caf::error& err) { result = status::io_error(view(err).message); });
  return result;
}

class production_host final : public deploy_host {
 public:
  production_host(caf::actor_system& sys, caf::actor owner, std::string id,
                  std::shared_ptr<std::atomic<stop_request>> stop,
                  std::shared_ptr<std::atomic<canary_verdict>> verdict, const environment& env, uint16_t stable_port,
                  std::shared_ptr<production_route> route)
      : sys_(sys),
        owner_(std::move(owner)),
        id_(std::move(id)),
        stop_(std::move(stop)),
        verdict_(std::move(verdict)),
        env_(env),
        stable_port_(stable_port),
        route_(std::move(route)) {}

  status record(std::vector<new_event> events, bool durable) override {
    if (!durable) {  // in order behind what was sent before; made durable by the next durable record
      caf::anon_send(owner_, record_atom_v, std::move(events), false);
      return status::ok();
    }
    bool done = false;
    return ask(sys_, owner_, &done, record_atom_v, std::move(events), true);
  }

  stop_request stop_requested() const override { return stop_->load(); }

  serving_release serving() override {
    serving_release s;
    caf::scoped_actor self{sys_};
    self->request(owner_, ask_timeout, serving_atom_v)
        .receive([&](std::string& hash, instance_ref& r) { s = {std::move(hash), std::move(r)}; },
                 [&](caf::error&) {});
    return s;
  }

  status set_route(uint16_t port) override { return route_->point(sys_, env_, stable_port_, port); }

  status set_split(const traffic_split& split) override {
    bool done = false;
    return ask(sys_, names::whereis(sys_, names::proxy), &done, canary_atom_v, env_.project + "-production", split);
  }

  canary_verdict operator_verdict() const override { return verdict_->load(); }

  void canary_progress(const canary_status& now) override { caf::anon_send(owner_, canary_live_atom_v, id_, now); }

  status lease_port(uint16_t* port) override {
    return ask(sys_, names::whereis(sys_, names::ports), port, lease_atom_v, env_.project, port_kind::candidate);
  }

  void release_port(uint16_t port, const std::string& why) override {
    if (port != 0 && port != stable_port_)
      caf::anon_send(names::whereis(sys_, names::ports), release_atom_v, port, why);
  }

 private:
  caf::actor_system& sys_;
  caf::actor owner_;
  std::string id_;
  std::shared_ptr<std::atomic<stop_request>> stop_;
  std::shared_ptr<std::atomic<canary_verdict>> verdict_;
  environment env_;
  uint16_t stable_port_;
  std::shared_ptr<production_route> route_;
};

}  // namespace

void update_route_domains(self_ptr self) {
  auto& st = self->state;
  if (st.route->wanted() == st.spec.domains) return;
  st.route->want(st.spec.domains);
  if (!st.env.settings.proxy) return;
  auto route = st.route;
  auto* sys = &self->system();
  auto env = st.env;
  auto stable = st.stable_port;
  run_blocking(
      self,
      [=] {
        if (auto s = route->sync(*sys, env, stable); !s) throw std::runtime_error(s.message());
      },
      [self](const std::string& failure) {
        if (!failure.empty())
          log_kv(spdlog::level::warn, "production route: the new custom domains were not taken: " + failure,
                 env_fields(self->state.env.project, "production"));
      });
}

void run_pipeline(self_ptr self, const std::string& id, std::function<void(const std::string&)> done) {
  auto& st = self->state;
  auto& d = st.prod.deployments.at(id);
  auto& settings = st.env.settings;
  deploy_inputs in;
  in.project = st.env.project;
  in.id = id;
  in.kind = d.kind;
  in.force = d.force;
  in.target = d.target;
  in.spec = st.spec;
  in.paths = st.env.paths;
  in.stable_port = st.stable_port;
  in.sandbox = st.env.sandbox;
  in.current = st.prod.current;
  in.releases = st.prod.releases;
  for (auto& queued : queued_ids(st.prod))  // a queued rollback's release must survive retention
    if (auto& q = st.prod.deployments.at(queued); q.kind == job_kind::rollback) in.in_use.push_back(q.target);
  in.proxy = settings.proxy;
  in.build_timeout = std::chrono::seconds(settings.build_timeout_s);
  in.phase_timeout = std::chrono::seconds(settings.phase_timeout_s);
  in.stop_grace = std::chrono::milliseconds(settings.stop_grace_ms);
  in.drain = std::chrono::milliseconds(settings.drain_ms);
  auto me = caf::actor_cast<caf::actor>(self);
  auto stop = st.job->stop;
  auto verdict = st.job->verdict;
  auto followed = st.job->followed;
  in.canary_unavailable = settings.canary_unavailable;
  if (in.canary_unavailable.empty() && !st.env.meter)
    in.canary_unavailable = "production.canary: the proxy's traffic meter is not running";
  // The log's lines reach this actor only while someone follows the deployment.
  auto log = std::make_shared<deploy_log>(in.paths.deployment_log(id),
                                          [me, id, followed](const std::vector<std::string>& lines) {
                                            if (followed->load()) caf::anon_send(me, log_lines_atom_v, id, lines);
                                          });
  st.job->log = log;
  auto env = st.env;
  auto stable_port = st.stable_port;
  auto route = st.route;
  auto* sys = &self->system();
  run_blocking(
      self,
      [=]() mutable {
        auto secrets = read_secrets_file(in.paths);
        fill_environments(in, secrets);
        log->set_mask(secret_mask(secrets));
        make_dirs({in.paths.production, in.paths.production_logs});
        production_host host(*sys, me, id, stop, verdict, env, stable_port, route);
        run_deploy(host, {*env.driver, *env.guards, *log, env.metrics.get(), env.meter.get()}, in);
      },
      [done](const std::string& failure) { done(failure); });
}

caf::result<bool> on_record(self_ptr self, std::vector<new_event>& events, bool durable) {
  if (!durable) {
    record(self, std::move(events), false);
    return true;
  }
  auto rp = self->make_response_promise<bool>();
  record(self, std::move(events), true, [rp](auto&) mutable { rp.deliver(true); });
  return rp;
}

caf::result<std::string, instance_ref> on_serving(self_ptr self) {
  auto& st = self->state;
  st.release.release();  // from here on its exit is the deploy's doing
  if (st.prod.status != "running") return {std::string{}, instance_ref{}};
  return {st.prod.current, st.prod.process};
}

}  // namespace berth::production_detail
