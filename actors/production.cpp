#include "actors/production.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "actors/append.hpp"
#include "actors/blocking.hpp"
#include "actors/names.hpp"
#include "actors/production_detail.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "messages/project_state.hpp"
#include "runtime/logs/logging.hpp"
#include "runtime/logs/mask.hpp"
#include "runtime/process/process_driver.hpp"

namespace berth {

namespace production_detail {

using json = nlohmann::json;
constexpr auto store_timeout = std::chrono::seconds(30);
constexpr size_t detail_log_lines = deploy_log::kept_lines;

new_event event(self_ptr self, const std::string& type, const json& data) {
  return {project_stream(self->state.env.project), type, dump_json(data)};
}

new_event phase_record(self_ptr self, const std::string& id, phase p, const std::string& message,
                       const json& resources, const deployment_error* error) {
  return {project_stream(self->state.env.project), event_type(p), phase_event_data(id, message, resources, error)};
}

namespace {

// The deployments `stored` touched, each once.
std::vector<std::string> deployments_in(const std::vector<event_record>& stored) {
  std::vector<std::string> ids;
  for (auto& e : stored) {
    phase p;
    if (!phase_of_event(e.type, p) || p == phase::queued) continue;
    auto id = payload_object(e.data).value("id", "");
    if (!id.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  return ids;
}

// Followers of a deployment get every new state; once it has ended they are let go.
void tell_followers_of(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto f = st.followers.find(id);
  auto d = st.prod.deployments.find(id);
  if (f == st.followers.end() || d == st.prod.deployments.end()) return;
  auto view = view_of(self, d->second);
  for (auto& follower : f->second) self->send(follower, view);
  if (is_terminal(d->second.current)) st.followers.erase(f);
}

void tell_followers(self_ptr self, const std::vector<event_record>& stored) {
  for (auto& id : deployments_in(stored)) tell_followers_of(self, id);
}

// berth's own line per phase a deployment enters, with its project/deployment/phase fields
// (the deploy's story for whoever reads berth's log rather than the API).
void log_phases(self_ptr self, const std::vector<event_record>& stored) {
  auto& project = self->state.env.project;
  for (auto& e : stored) {
    phase p;
    if (!phase_of_event(e.type, p)) continue;
    auto data = payload_object(e.data);
    auto id = p == phase::queued ? deployment_id(project, e.seq) : data.value("id", "");
    auto fields = project_fields(project, id, to_string(p));
    if (auto message = data.value("message", ""); !message.empty()) fields["message"] = message;
    auto level = spdlog::level::info;
    if (auto err = data.find("error"); err != data.end() && err->is_object()) {
      fields["code"] = err->value("code", "");
      level = spdlog::level::warn;
    }
    log_kv(level, "deployment " + std::string(to_string(p)), fields);
  }
}

// Each deployment end the log just took: its result and its phases' durations, once.
void count_ends(self_ptr self, const std::vector<event_record>& stored) {
  auto& st = self->state;
  if (!st.env.metrics) return;
  for (auto& e : stored) {
    phase p;
    if (!phase_of_event(e.type, p) || !is_terminal(p)) continue;
    if (auto d = st.prod.deployments.find(payload_object(e.data).value("id", "")); d != st.prod.deployments.end())
      st.env.metrics->deployment_ended(d->second);
  }
}

caf::result<deployment_view> detail(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto it = st.prod.deployments.find(id);
  if (it == st.prod.deployments.end()) return make_error(errc::not_found, "no deployment '" + id + "'");
  auto view = view_of(self, it->second);
  if (st.job && st.job->id == id && st.job->log) {
    view.log = st.job->log->last_lines();
    return view;
  }
  auto rp = self->make_response_promise<deployment_view>();
  auto file = st.env.paths.deployment_log(id).string();
  auto paths = st.env.paths;
  auto shared = std::make_shared<deployment_view>(std::move(view));
  // Lines are masked as they are written; masked again as they are served, for logs an older
  // berth wrote unmasked and for values that became secrets since.
  run_blocking(
      self,
      [=] {
        shared->log = mask_secrets(process_driver::tail(file, detail_log_lines), secret_mask(read_secrets_file(paths)));
      },
      [=](const std::string&) mutable { rp.deliver(*shared); });
  return rp;
}

caf::result<deployment_view> follow(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto it = st.prod.deployments.find(id);
  if (it == st.prod.deployments.end()) return make_error(errc::not_found, "no deployment '" + id + "'");
  auto view = view_of(self, it->second);
  if (st.job && st.job->id == id && st.job->log) view.log = st.job->log->last_lines();
  if (!is_terminal(it->second.current)) {
    auto follower = caf::actor_cast<caf::actor>(self->current_sender());
    if (follower) {
      self->monitor(follower);
      st.followers[id].push_back(follower);
      if (st.job && st.job->id == id) st.job->followed->store(true);
    }
  }
  return view;
}

history_view history(self_ptr self) {
  auto& p = self->state.prod;
  history_view h{p.current, p.status, {}};
  for (auto& [hash, r] : p.releases) h.releases.push_back(r);
  std::sort(h.releases.begin(), h.releases.end(), [](auto& a, auto& b) {
    return a.created_us != b.created_us ? a.created_us > b.created_us : a.hash < b.hash;
  });
  return h;
}

}  // namespace

void record(self_ptr self, std::vector<new_event> events, bool durable,
            std::function<void(const std::vector<event_record>&)> then) {
  append_events(self, std::move(events), durable, "production " + self->state.env.project,
                [self, then](std::vector<event_record>& stored) {
                  for (auto& e : stored) fold(self->state.prod, e);
                  log_phases(self, stored);
                  tell_followers(self, stored);
                  count_ends(self, stored);
                  if (then) then(stored);
                });
}

production_view status_view(self_ptr self) {
  auto& st = self->state;
  auto& p = st.prod;
  auto v = production_view_of(p, st.stable_port, site_url(st.env.settings.site, st.env.project, site_env::production),
                              st.job ? st.job->id : "");
  if (p.status == "running") v.usage = usage_view_of(*st.env.driver, p.process);
  return v;
}

deployment_view view_of(self_ptr self, const deployment_record& d) {
  auto& st = self->state;
  deployment_view v;
  v.record = d;
  auto queued = queued_ids(st.prod);
  auto it = std::find(queued.begin(), queued.end(), d.id);
  v.position = it == queued.end() ? 0 : static_cast<size_t>(it - queued.begin()) + 1;
  v.url = local_url(st.stable_port);
  v.public_url = site_url(st.env.settings.site, st.env.project, site_env::production);
  if (st.job && st.job->id == d.id && d.current == phase::canary) v.canary = st.job->canary;
  return v;
}

}  // namespace production_detail

using namespace production_detail;

caf::behavior production_actor(self_ptr self, environment env, manifest spec, uint16_t stable_port) {
  auto& st = self->state;
  st.env = std::move(env);
  st.spec = std::move(spec);
  st.stable_port = stable_port;
  st.route = std::make_shared<production_route>(st.spec.domains);
  init_keeper(self);
  self->set_down_handler([=](caf::down_msg& dm) {
    for (auto& [id, list] : self->state.followers)
      list.erase(std::remove_if(list.begin(), list.end(), [&](auto& a) { return a.address() == dm.source; }),
                 list.end());
  });
  auto main = self->state.release.handlers().or_else(
      [=](deploy_atom, bool force) { return enqueue(self, {"", job_kind::deploy, force, "", {}}); },
      [=](rollback_atom, const std::string& hash) { return enqueue(self, {"", job_kind::rollback, false, hash, {}}); },
      [=](deployment_atom, const std::string& id) { return detail(self, id); },
      [=](cancel_atom, const std::string& id) { return cancel(self, id); },
      [=](plan_atom, const plan_request& r) { return plan(self, r); },
      [=](verdict_atom, const std::string& verdict, const std::string& id) {
        return decide_canary(self, verdict, id);
      },
      [=](canary_live_atom, const std::string& id, canary_status& now) {
        auto& st = self->state;
        if (!st.job || st.job->id != id) return;
        st.job->canary = std::move(now);
        tell_followers_of(self, id);
      },
      [=](subscribe_atom, const std::string& id) { return follow(self, id); },
      [=](status_atom) { return status_view(self); },
      [=](history_atom) { return history(self); },
      [=](stop_atom) { return control(self, production_command::kind::stop); },
      [=](start_atom) { return control(self, production_command::kind::start); },
      [=](update_atom, manifest& m) {
        self->state.spec = std::move(m);
        update_route_domains(self);
      },
      [=](delete_atom) { return delete_all(self); },
      [=](shutdown_atom, bool stop_apps, uint32_t grace_ms) { return shut_down(self, stop_apps, grace_ms); },
      [=](shutdown_atom) {  // the shutdown grace is over: the running phase gives up now
        if (self->state.job) self->state.job->stop->store(stop_request::shutdown_now);
      },
      [=](record_atom, std::vector<new_event>& events, bool durable) { return on_record(self, events, durable); },
      [=](serving_atom) { return on_serving(self); },
      [=](log_lines_atom, const std::string& id, std::vector<std::string>& lines) { log_lines(self, id, lines); },
      [=](ready_atom) { return true; },
      [=](crash_atom) -> std::string { throw std::runtime_error("crash requested"); });
  // Nothing is taken before the start-up reconciliation is done (a job's build must not be
  // swept as a stray): until then every message waits in the mailbox.
  self->set_default_handler(caf::skip);
  self->request(names::whereis(self->system(), names::event_store), store_timeout, read_stream_atom_v,
                project_stream(st.env.project), uint64_t{0}, uint64_t{0})
      .await(
          [=](std::vector<event_record>& events) {
            for (auto& e : events) {
              if (starts_over(e)) self->state.prod = {};  // an earlier project of that name
              fold(self->state.prod, e);
            }
            reconcile_at_start(self, [=] {
              self->set_default_handler(caf::print_and_drop);
              self->become(main);
              pump(self);
            });
          },
          [=](caf::error& err) { self->quit(err); });
  return {[=](ready_atom) { return false; }};  // what answers while the rest waits in the mailbox
}

}  // namespace berth
