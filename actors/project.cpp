#include "actors/project.hpp"

#include <spdlog/spdlog.h>

#include "actors/blocking.hpp"
#include "actors/names.hpp"
#include "actors/preview.hpp"
#include "actors/production.hpp"
#include "actors/project_source.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "runtime/logs/logging.hpp"

namespace berth {

namespace {

using self_ptr = caf::stateful_actor<project_actor_state>*;
constexpr auto store_timeout = std::chrono::seconds(30);
constexpr auto child_timeout = std::chrono::seconds(5);
constexpr auto stop_timeout = std::chrono::seconds(120);

// Specs read the project's state when they run, so a restarted environment starts from the
// current manifest.
std::vector<child_spec> environment_specs(self_ptr self) {
  return {
      {"preview",
       [=](caf::actor_system& sys) {
         auto& st = self->state;
         return sys.spawn(preview_actor, st.env, st.project.spec, st.project.preview_port);
       },
       restart_type::permanent},
      {"production",
       [=](caf::actor_system& sys) {
         auto& st = self->state;
         return sys.spawn(production_actor, st.env, st.project.spec, st.project.production_port);
       },
       restart_type::permanent},
  };
}

// The folder follows the state: it exists, and .env carries the ports and env. Blocking (it
// syncs the file), so on a worker; `then` runs in the actor (which takes nothing else meanwhile
// when `mode` holds).
void materialise(self_ptr self, std::function<void(const std::string& failure)> then,
                 while_blocked mode = while_blocked::go_on) {
  auto p = self->state.project;
  auto paths = self->state.env.paths;
  run_blocking(
      self,
      [=] {
        if (auto s = create_project_dirs(paths); !s) throw std::runtime_error(s.message());
        if (auto s = write_env_file(paths, p.name, p.production_port, p.preview_port, p.spec.env); !s)
          throw std::runtime_error(s.message());
      },
      std::move(then), mode);
}

// The project with both environments' status, asked of them.
caf::result<project_view> with_environments(self_ptr self) {
  auto rp = self->make_response_promise<project_view>();
  auto& st = self->state;
  auto view = std::make_shared<project_view>(project_view_of(st.project, st.last_seq, st.events));
  view->with_environments = true;
  auto pending = std::make_shared<int>(2);
  auto done = [=]() mutable {
    if (--*pending == 0) rp.deliver(*view);
  };
  auto production = self->state.sup.which_child("production");
  auto preview = self->state.sup.which_child("preview");
  if (!production) view->production_unavailable = "restarting", done();
  else
    self->request(production, child_timeout, status_atom_v)
        .then([=](production_view& v) mutable { view->production = std::move(v), done(); },
              [=](caf::error&) mutable { view->production_unavailable = "unavailable", done(); });
  if (!preview) view->preview_unavailable = "restarting", done();
  else
    self->request(preview, child_timeout, status_atom_v)
        .then([=](preview_view& v) mutable { view->preview = std::move(v), done(); },
              [=](caf::error&) mutable { view->preview_unavailable = "unavailable", done(); });
  return rp;
}

caf::result<project_view> update(self_ptr self, manifest m) {
  auto& st = self->state;
  if (m.name != st.project.name) return make_error(errc::invalid_manifest, "name: must match the project's name");
  if (st.project.spec.source_workspace && !m.source_workspace)
    return make_error(errc::conflict, "source: this is a workspace project, its tree lives only in preview/src; a "
                                      "path or git source would replace it (copy the tree out, then delete and "
                                      "recreate the project)");
  auto rp = self->make_response_promise<project_view>();
  auto paths = st.env.paths;
  auto problem = std::make_shared<caf::error>();
  auto spec = std::make_shared<manifest>(std::move(m));
  run_blocking(
      self,
      [=] {
        // A manifest read back from GET shows secrets masked: a masked value keeps the current
        // one rather than becoming the literal mask.
        auto current = read_secrets_file(paths);
        for (auto& [key, value] : spec->secrets) {
          if (value != "********") continue;
          auto it = current.find(key);
          if (it == current.end()) {
            *problem = make_error(errc::invalid_manifest, "secrets." + key + ": a masked value for a secret that is not set");
            return;
          }
          value = it->second;
        }
        if (auto s = write_secrets_file(paths, spec->secrets); !s) *problem = make_error(errc::storage_error, s.message());
      },
      [=](const std::string& failure) mutable {
        if (!failure.empty()) { rp.deliver(make_error(errc::storage_error, failure)); return; }
        if (*problem) { rp.deliver(*problem); return; }
        auto& st = self->state;
        std::vector<new_event> events{{project_stream(st.project.name), ev::project_updated, project_updated_data(*spec)}};
        self->request(names::whereis(self->system(), names::event_store), store_timeout, append_atom_v, std::move(events))
            .then(
                [=](std::vector<event_record>& stored) mutable {
                  for (auto& e : stored) self->state.note(e);
                  for (const char* env : {"preview", "production"})
                    if (auto child = self->state.sup.which_child(env))
                      self->send(child, update_atom_v, self->state.project.spec);
                  materialise(self, [=](const std::string&) mutable {
                    auto& st = self->state;
                    rp.deliver(project_view_of(st.project, st.last_seq, st.events));
                  });
                },
                [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      });
  return rp;
}

// Forwards to an environment; it answers the original requester.
template <class... Ts>
caf::result<void> to_child(self_ptr self, const char* env, Ts&&... xs) {
  auto child = self->state.sup.which_child(env);
  if (!child) return make_error(errc::unavailable, std::string(env) + " is restarting; retry");
  auto rp = self->make_response_promise();
  rp.delegate(child, std::forward<Ts>(xs)...);
  return rp;
}

// Asks both environments `xs` and answers true once both did (or could not).
template <class... Ts>
caf::result<bool> ask_both(self_ptr self, std::chrono::milliseconds limit, Ts... xs) {
  auto rp = self->make_response_promise<bool>();
  auto pending = std::make_shared<int>(2);
  auto done = [=]() mutable {
    if (--*pending == 0) rp.deliver(true);
  };
  for (const char* env : {"production", "preview"}) {
    auto child = self->state.sup.which_child(env);
    if (!child) {
      done();
      continue;
    }
    self->request(child, limit, xs...).then([=](bool) mutable { done(); }, [=](caf::error&) mutable { done(); });
  }
  return rp;
}

}  // namespace

void project_actor_state::note(const event_record& e) {
  if (e.type != ev::project_created && e.type != ev::project_updated && e.type != ev::project_deleted &&
      e.type != ev::sandbox_assigned && e.type != ev::source_updated)
    return;
  if (starts_over(e)) events = 0;
  fold(project, e);
  last_seq = e.seq;
  if (e.type != ev::project_deleted) ++events;
}

caf::behavior project_actor(self_ptr self, environment env) {
  self->state.env = std::move(env);
  auto name = self->state.env.project;
  // State = fold(events). Other messages wait until the fold is done.
  self->request(names::whereis(self->system(), names::event_store), store_timeout, read_stream_atom_v,
                project_stream(name), uint64_t{0}, std::numeric_limits<uint64_t>::max())
      .await(
          [=](std::vector<event_record>& events) {
            for (auto& e : events) self->state.note(e);
            if (!self->state.project.exists) {
              self->quit(make_error(errc::not_found, "project " + name + " does not exist"));
              return;
            }
            // Its folder exists before its environments start (or a delete runs).
            materialise(
                self,
                [=](const std::string& failure) {
                  if (!failure.empty()) {
                    // Its environments cannot run without it: the projects supervisor parks us.
                    log_kv(spdlog::level::err, "project folder: " + failure, project_fields(name));
                    self->quit(make_error(errc::storage_error, "its folder: " + failure));
                    return;
                  }
                  // A source change a crash interrupted is finished before the preview runs.
                  recover_source(self, [=](const std::string& failure) {
                    if (!failure.empty()) {
                      log_kv(spdlog::level::err, failure, project_fields(name));
                      self->quit(make_error(errc::storage_error, failure));
                      return;
                    }
                    self->state.sup.init(self, supervisor_flags{}, environment_specs(self));
                    caf::anon_send(names::whereis(self->system(), names::projects), project_up_atom_v, name);
                  });
                },
                while_blocked::hold);
          },
          [=](caf::error& err) { self->quit(err); });
  return supervisor_handlers(self, self->state.sup)
      .or_else(
          [=](get_atom) { return with_environments(self); },
          [=](status_atom) {
            auto& st = self->state;
            return project_view_of(st.project, st.last_seq, st.events);
          },
          [=](update_atom, manifest& m) { return update(self, std::move(m)); },
          [=](source_atom, source_change& c) { return change_source(self, std::move(c)); },
          [=](preview_atom, const std::string& action) -> caf::result<void> {
            auto& p = self->state.project;
            if (action == "start") return to_child(self, "preview", start_atom_v, p.spec, p.preview_port);
            if (action == "restart") return to_child(self, "preview", restart_atom_v, p.spec, p.preview_port);
            if (action == "stop") return to_child(self, "preview", stop_atom_v);
            return make_error(errc::not_found, "unknown preview action '" + action + "'");
          },
          [=](deploy_atom, bool force) { return to_child(self, "production", deploy_atom_v, force); },
          [=](rollback_atom, const std::string& hash) { return to_child(self, "production", rollback_atom_v, hash); },
          [=](deployment_atom, const std::string& id) { return to_child(self, "production", deployment_atom_v, id); },
          [=](cancel_atom, const std::string& id) { return to_child(self, "production", cancel_atom_v, id); },
          [=](plan_atom, const plan_request& r) { return to_child(self, "production", plan_atom_v, r); },
          [=](verdict_atom, const std::string& verdict, const std::string& id) {
            return to_child(self, "production", verdict_atom_v, verdict, id);
          },
          [=](subscribe_atom, const std::string& id) { return to_child(self, "production", subscribe_atom_v, id); },
          [=](production_atom, const std::string& action) -> caf::result<void> {
            if (action == "status") return to_child(self, "production", status_atom_v);
            if (action == "history") return to_child(self, "production", history_atom_v);
            if (action == "stop") return to_child(self, "production", stop_atom_v);
            if (action == "start") return to_child(self, "production", start_atom_v);
            return make_error(errc::not_found, "unknown production action '" + action + "'");
          },
          [=](delete_atom) {
            // Deleting stops the project's processes (a plain berth shutdown does not).
            return ask_both(self, stop_timeout, delete_atom_v);
          },
          [=](shutdown_atom, bool stop_apps, uint32_t grace_ms) {
            return ask_both(self, std::chrono::milliseconds(grace_ms) + std::chrono::seconds(30), shutdown_atom_v,
                            stop_apps, grace_ms);
          },
          [=](crash_atom) -> std::string { throw std::runtime_error("crash requested"); },
          [=](crash_atom, const std::string& actor) -> caf::result<std::string> {
            // Answered first, then the target throws: the caller learns what was crashed.
            if (actor != "project" && actor != "preview" && actor != "production")
              return make_error(errc::invalid_request, "actor: expected project, preview or production");
            auto target = actor == "project" ? caf::actor_cast<caf::actor>(self) : self->state.sup.which_child(actor);
            if (!target) return make_error(errc::unavailable, actor + " is restarting");
            caf::anon_send(target, crash_atom_v);
            return actor;
          });
}

}  // namespace berth
