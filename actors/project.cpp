#include "actors/project.hpp"

#include <spdlog/spdlog.h>

#include "actors/names.hpp"
#include "actors/preview.hpp"
#include "actors/production.hpp"
#include "actors/project_jobs.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"

namespace berth {

namespace {

using self_ptr = caf::stateful_actor<project_actor_state>*;
using json = nlohmann::json;
constexpr auto store_timeout = std::chrono::seconds(30);
constexpr auto child_timeout = std::chrono::seconds(5);

// Specs read the project's state when they run, so a restarted environment starts from the
// current manifest and the last preview state in the log.
std::vector<child_spec> environment_specs(self_ptr self, const std::string& name,
                                          const project_paths& paths) {
  return {
      {"preview",
       [=](caf::actor_system& sys) {
         auto& p = self->state.project;
         return sys.spawn(preview_actor, name, paths, p.spec, p.preview_port, self->state.settings);
       },
       restart_type::permanent},
      {"production",
       [=](caf::actor_system& sys) {
         auto& st = self->state;
         return sys.spawn(production_actor, name, paths, st.settings, st.project.spec,
                          st.project.production_port, caf::actor_cast<caf::actor>(self));
       },
       restart_type::permanent},
  };
}

// The folder follows the state: it exists, and .env carries the ports and env.
void materialise(const project_actor_state& st) {
  auto& p = st.project;
  if (auto s = create_project_dirs(st.paths); !s) throw std::runtime_error(s.message());
  if (auto s = write_env_file(st.paths, p.name, p.production_port, p.preview_port, p.spec.env); !s)
    throw std::runtime_error(s.message());
}

// The project JSON with both environments: production from the fold, the preview's live
// status from its actor.
caf::result<std::string> reply_with_environments(self_ptr self) {
  auto rp = self->make_response_promise<std::string>();
  auto out = to_json(self->state.project);
  out["environments"] = {{"production", project_jobs::production_status(self)}};
  auto preview = self->state.sup.which_child("preview");
  if (!preview) {
    out["environments"]["preview"] = json{{"env", "preview"}, {"status", "restarting"}};
    return out.dump();
  }
  self->request(preview, child_timeout, status_atom_v)
      .then(
          [=](std::string& s) mutable {
            out["environments"]["preview"] = json::parse(s, nullptr, false);
            rp.deliver(out.dump());
          },
          [=](caf::error&) mutable {
            out["environments"]["preview"] = json{{"env", "preview"}, {"status", "unavailable"}};
            rp.deliver(out.dump());
          });
  return rp;
}

}  // namespace

caf::behavior project_actor(self_ptr self, std::string name, std::string data_dir,
                            deploy_settings settings) {
  self->state.paths = paths_for(data_dir, name);
  self->state.settings = std::move(settings);
  // State = fold(events). Other messages wait until the fold is done.
  self->request(names::whereis(self->system(), names::event_store), store_timeout,
                read_stream_atom_v, project_stream(name), uint64_t{0},
                std::numeric_limits<uint64_t>::max())
      .await(
          [=](std::vector<event_record>& events) {
            for (auto& e : events) fold(self->state.project, e);
            if (!self->state.project.exists) {
              self->quit(make_error(errc::not_found, "project " + name + " does not exist"));
              return;
            }
            materialise(self->state);
            // A production that comes back abandoned the command it ran: tell the queue.
            auto started = std::make_shared<bool>(false);
            self->state.sup.on_child_started([=](const std::string& id, const caf::actor&) {
              if (id != "production") return;
              if (*started) caf::anon_send(caf::actor_cast<caf::actor>(self), restarted_atom_v, id);
              *started = true;
            });
            self->state.sup.init(self, supervisor_flags{}, environment_specs(self, name, self->state.paths));
            project_jobs::resume(self);
          },
          [=](caf::error& err) { self->quit(err); });
  return supervisor_handlers(self, self->state.sup)
      .or_else(
          [=](get_atom) { return reply_with_environments(self); },
          [=](status_atom) { return to_json(self->state.project).dump(); },
          [=](update_atom, manifest& m) -> caf::result<std::string> {
            auto& st = self->state;
            if (m.name != st.project.name)
              return make_error(errc::invalid_manifest, "name: must match the project's name");
            // A manifest read back from GET shows secrets masked: a masked value keeps the
            // current one rather than becoming the literal mask.
            auto current = read_secrets_file(st.paths);
            for (auto& [key, value] : m.secrets) {
              if (value != "********") continue;
              auto it = current.find(key);
              if (it == current.end())
                return make_error(errc::invalid_manifest, "secrets." + key + ": a masked value for a secret that is not set");
              value = it->second;
            }
            if (auto s = write_secrets_file(st.paths, m.secrets); !s)
              return make_error(errc::storage_error, s.message());
            auto rp = self->make_response_promise<std::string>();
            std::vector<new_event> events{
                {project_stream(st.project.name), ev::project_updated, project_updated_data(m)}};
            self->request(names::whereis(self->system(), names::event_store), store_timeout,
                          append_atom_v, std::move(events))
                .await(
                    [=](std::vector<event_record>& stored) mutable {
                      for (auto& e : stored) fold(self->state.project, e);
                      materialise(self->state);
                      rp.deliver(to_json(self->state.project).dump());
                    },
                    [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
            return rp;
          },
          [=](preview_atom, const std::string& action) -> caf::result<std::string> {
            auto preview = self->state.sup.which_child("preview");
            if (!preview) return make_error(errc::unavailable, "the preview is restarting; retry");
            auto& p = self->state.project;
            auto rp = self->make_response_promise();
            if (action == "start")
              rp.delegate(preview, start_atom_v, p.spec, p.preview_port);
            else if (action == "restart")
              rp.delegate(preview, restart_atom_v, p.spec, p.preview_port);
            else if (action == "stop")
              rp.delegate(preview, stop_atom_v);
            else
              return make_error(errc::not_found, "unknown preview action '" + action + "'");
            return rp;
          },
          [=](deploy_atom, bool force) { return project_jobs::deploy(self, force); },
          [=](rollback_atom, const std::string& hash) { return project_jobs::rollback(self, hash); },
          [=](production_atom, const std::string& action) { return project_jobs::production(self, action); },
          [=](deployment_atom, const std::string& id) { return project_jobs::detail(self, id); },
          [=](cancel_atom, const std::string& id) { return project_jobs::cancel(self, id); },
          [=](committed_atom, const std::vector<event_record>& events) {
            project_jobs::committed(self, events);
          },
          [=](delete_atom) { return project_jobs::stop_everything(self); },
          [=](restarted_atom, const std::string&) { project_jobs::production_restarted(self); },
          [=](shutdown_atom, bool stop_apps, uint32_t grace_ms) {
            return project_jobs::shut_down(self, stop_apps, grace_ms);
          },
          [=](crash_atom) -> std::string { throw std::runtime_error("crash requested"); },
          [=](crash_atom, const std::string& actor) -> caf::result<std::string> {
            // Answered first, then the target throws: the caller learns what was crashed.
            auto target = actor == "project" ? caf::actor_cast<caf::actor>(self) : self->state.sup.which_child(actor);
            if (actor != "project" && actor != "preview" && actor != "production")
              return make_error(errc::invalid_request, "actor: expected project, preview or production");
            if (!target) return make_error(errc::unavailable, actor + " is restarting");
            caf::anon_send(target, crash_atom_v);
            return json{{"crashed", actor}, {"project", self->state.project.name}}.dump();
          });
}

}  // namespace berth
