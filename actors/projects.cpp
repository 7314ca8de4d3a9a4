#include "actors/projects.hpp"

#include <unistd.h>

#include <filesystem>
#include <limits>

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/blocking.hpp"
#include "actors/names.hpp"
#include "actors/project.hpp"
#include "actors/project_parking.hpp"
#include "actors/projects_load.hpp"
#include "messages/atoms.hpp"
#include "messages/domains.hpp"
#include "messages/errors.hpp"
#include "runtime/files/layout.hpp"
#include "runtime/files/fs_util.hpp"
#include "runtime/logs/logging.hpp"
#include "runtime/release/source.hpp"
#include "runtime/workspace/tree_hash.hpp"

namespace berth {

namespace {

using self_ptr = caf::stateful_actor<projects_state>*;
using json = nlohmann::json;
namespace fs = std::filesystem;
constexpr auto store_timeout = std::chrono::seconds(30);
constexpr auto child_timeout = std::chrono::seconds(5);
// An update writes the secrets file and one event; the answer is awaited well past the HTTP
// timeout so that what the manifest names is what the index has.
constexpr auto update_timeout = std::chrono::minutes(10);

caf::actor store(self_ptr self) { return names::whereis(self->system(), names::event_store); }
caf::actor ports(self_ptr self) { return names::whereis(self->system(), names::ports); }

// Compensation for a creation that failed after leasing ports.
void undo_create(self_ptr self, const std::string& name) {
  auto paths = paths_for(self->state.data_dir, name);
  run_blocking(self, [paths] { remove_project_dir(paths); }, [](const std::string&) {});
  caf::anon_send(ports(self), release_atom_v, name, std::string{"creation failed"});
  self->state.index.erase(name);
  self->state.domains.forget(name);
  if (self->state.uids) self->state.uids->give_back(name);
}

// Leases ports, makes the folder (off the scheduler: it syncs files), records project_created,
// starts the project actor; `done` gets the project, or the error after everything made so far
// is undone.
caf::actor awake(self_ptr self, const std::string& name, caf::error& err);

// A manifest berth cannot run here (its runtime is not available, or it sets limits the
// runtime driver cannot apply): refused, nothing written.
caf::error limits_refusal(self_ptr self, const manifest& m) {
  if (auto why = self->state.driver->runtime_unavailable(m.runtime); !why.empty())
    return make_error(errc::runtime_unavailable, "runtime " + m.runtime + ": " + why);
  if (m.runtime == "swarm" && !self->state.settings.proxy)
    return make_error(errc::runtime_unavailable, "runtime swarm: needs the proxy (--switch-mode proxy): each release "
                                                "of a service gets its own port and the proxy moves between them");
  if (m.canary.enabled() && !self->state.settings.canary_unavailable.empty())
    return make_error(errc::runtime_unavailable, self->state.settings.canary_unavailable);
  if (m.runtime == "swarm" && m.image_registry.empty() && self->state.settings.registry.empty())
    return make_error(errc::invalid_manifest, "image.registry: the swarm runtime needs a registry every node can pull "
                                              "from (image.registry, or berth's --registry)");
  if (!m.sets_limits()) return {};
  auto why = self->state.driver->limits_unavailable();
  if (why.empty()) return {};
  return make_error(errc::limits_unavailable, "this manifest sets limits, which berth cannot apply here: " + why);
}

// Custom domains that are berth's own names (under the domain suffix) or another project's.
caf::error domains_refusal(self_ptr self, const manifest& m) {
  if (auto why = domains_under_suffix(m.domains, self->state.settings.site.domain_suffix); !why.empty())
    return make_error(errc::invalid_manifest, why);
  if (auto other = self->state.domains.taken(m.domains, m.name))
    return make_error(errc::conflict, fmt::format("domains[{}]: '{}' is a domain of project '{}'", other->index,
                                                  m.domains[other->index], other->project));
  return {};
}

// A workspace seeded at create time: its source copied once into preview/src, and hashed.
// invalid_argument when the seed cannot be copied (missing path, git failure).
status seed_workspace(const manifest& m, const project_paths& paths, tree_listing* out) {
  if (!m.source_workspace || (m.seed_path.empty() && m.seed_git.empty())) return status::ok();
  if (auto s = snapshot_source(m.seed_path, m.seed_git, m.seed_ref, paths.preview_src); !s)
    return status::invalid_argument("source.workspace.seed: cannot copy it: " + s.message());
  return hash_tree(paths.preview_src, out, hash_cache_for(paths.preview_src).get());
}

void create_then(self_ptr self, manifest m, std::function<void(caf::expected<project_view>)> done) {
  auto name = m.name;
  if (auto refused = limits_refusal(self, m)) return done(refused);
  if (self->state.index.count(name))
    return done(make_error(errc::already_exists, "a project named '" + name + "' already exists"));
  if (auto refused = domains_refusal(self, m)) return done(refused);
  uint32_t uid = 0;  // its own sandbox uid (and gid), recorded with its creation
  if (auto& uids = self->state.uids) {
    auto taken = uids->take(name);
    if (!taken)
      return done(make_error(errc::conflict, fmt::format("no free sandbox uid in {}-{}: delete a project or widen "
                                                         "--sandbox-uids",
                                                         uids->lo(), uids->hi())));
    uid = *taken;
  }
  self->state.index[name] = name_status::creating;
  self->state.domains.commit(name, m.domains);  // claimed now: a create right behind sees them
  auto fail = [=](caf::error err) {
    undo_create(self, name);
    done(std::move(err));
  };
  auto seeded = std::make_shared<tree_listing>();  // a workspace's tree as seeded (hash empty: not seeded)
  auto record = [=](port_assignment ports) {
    std::vector<new_event> events{
        {project_stream(name), ev::project_created, project_created_data(m, ports.production, ports.preview, uid, uid)}};
    if (!seeded->hash.empty())
      events.push_back({project_stream(name), ev::source_updated,
                        source_updated_data(seeded->hash, seeded->files, seeded->bytes, "seed")});
    self->request(store(self), store_timeout, append_atom_v, std::move(events))
        .then(
            [=](std::vector<event_record>& stored) {
              // Dormant until a command needs its actor: its folder is made, nothing runs.
              self->state.index[name] = name_status::live;
              count_projects(self->state);
              project_record p;
              for (auto& e : stored) fold(p, e);
              done(project_view_of(p, stored.back().seq, stored.size()));
            },
            [=](caf::error& err) { fail(err); });
  };
  self->request(ports(self), store_timeout, lease_atom_v, name)
      .then(
          [=](port_assignment& ports) {
            auto paths = paths_for(self->state.data_dir, name);
            auto problem = std::make_shared<status>();
            run_blocking(
                self,
                [=] {
                  *problem = create_project_dirs(paths);
                  if (*problem) *problem = write_secrets_file(paths, m.secrets);
                  if (*problem) *problem = write_env_file(paths, name, ports.production, ports.preview, m.env);
                  if (*problem) *problem = seed_workspace(m, paths, seeded.get());
                  if (!*problem) remove_project_dir(paths);  // gone before the refusal is answered
                },
                [=](const std::string& failure) {
                  if (!failure.empty()) return fail(make_error(errc::storage_error, failure));
                  if (problem->which() == status::code::invalid_argument)
                    return fail(make_error(errc::invalid_manifest, problem->message()));
                  if (!*problem)
                    return fail(storage_failure(problem->which() == status::code::no_space, problem->message()));
                  record(ports);
                });
          },
          [=](caf::error& err) { fail(err); });
}

caf::result<project_view> create(self_ptr self, manifest m) {
  auto rp = self->make_response_promise<project_view>();
  create_then(self, std::move(m), [=](caf::expected<project_view> r) mutable {
    if (r)
      rp.deliver(std::move(*r));
    else
      rp.deliver(r.error());
  });
  return rp;
}

// Portal style: a validated name becomes a project from the configured template, deployed.
caf::result<deployment_view> oneshot(self_ptr self, const std::string& name) {
  if (auto nc = check_name(name); !nc.valid) return make_error(errc::invalid_name, "name " + nc.reason);
  auto& settings = self->state.settings;
  if (settings.template_manifest.empty())
    return make_error(errc::conflict, "no deploy template is configured (berth serve --deploy-template FILE)");
  auto j = json::parse(settings.template_manifest, nullptr, false);
  j["name"] = name;
  auto parsed = parse_manifest(j);
  if (!parsed.ok) return make_error(errc::invalid_manifest, "the deploy template: " + parsed.error);
  auto rp = self->make_response_promise<deployment_view>();
  create_then(self, parsed.value, [=](caf::expected<project_view> created) mutable {
    if (!created) { rp.deliver(created.error()); return; }
    caf::error err;
    auto child = awake(self, name, err);
    if (!child) {
      rp.deliver(err);
      return;
    }
    rp.delegate(child, deploy_atom_v, false);
  });
  return rp;
}

// Stops what runs (jobs, production, preview), then records the deletion, then removes the
// actor, the folder and the leases. Once the event is durable the project is gone; the steps
// after it are repeated by reconcile() if berth dies half-way.
caf::result<bool> remove(self_ptr self, const std::string& name) {
  auto it = self->state.index.find(name);
  if (it == self->state.index.end() || it->second != name_status::live)
    return make_error(errc::not_found, "no project named '" + name + "'");
  it->second = name_status::deleting;
  auto rp = self->make_response_promise<bool>();
  auto restore = [=](caf::error err) mutable {
    self->state.index[name] = name_status::live;
    rp.deliver(std::move(err));
  };
  auto record = [=]() mutable {
    std::vector<new_event> events{{project_stream(name), ev::project_deleted, "{}"}};
    self->request(store(self), store_timeout, append_atom_v, std::move(events))
        .then(
            [=](std::vector<event_record>&) mutable {
              // The project actor owns the folder: remove it only once the actor is gone, and
              // off the scheduler (a big tree takes long).
              auto finish = [=]() mutable {
                forget_failures(self, name);
                auto paths = paths_for(self->state.data_dir, name);
                run_blocking(
                    self,
                    [paths, name, driver = self->state.driver] {
                      // Images, volumes and services go with the project (its instances stopped).
                      if (auto s = driver->remove_project(name); !s)
                        log_kv(spdlog::level::warn, "projects: removing what the runtimes keep: " + s.message(),
                               project_fields(name));
                      remove_project_dir(paths);
                      forget_hash_cache(paths.preview_src);  // a project made again starts afresh
                    },
                    [=](const std::string&) mutable {
                      self->state.index.erase(name);
                      self->state.domains.forget(name);
                      count_projects(self->state);
                      if (self->state.uids) self->state.uids->give_back(name);
                      self->request(ports(self), store_timeout, release_atom_v, name, std::string{"deleted"})
                          .then([=](uint64_t) mutable { rp.deliver(true); },
                                [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
                    });
              };
              if (!self->state.sup.terminate_child(name, finish)) finish();
            },
            [=](caf::error& err) mutable { restore(err); });
  };
  auto child = self->state.sup.which_child(name);
  if (!child) {
    record();
    return rp;
  }
  // Deleting stops the project's processes; a plain berth shutdown does not.
  self->request(child, std::chrono::seconds(120), delete_atom_v)
      .then([=](bool) mutable { record(); },
            [=](caf::error& err) mutable {
              log_kv(spdlog::level::warn, "projects: stopping before deletion: " + to_string(err), project_fields(name));
              record();
            });
  return rp;
}

// A page of the list, from the index (no project actor is asked); broken projects show
// their broken state as their GET does.
project_page list_page(self_ptr self, const std::string& cursor, uint64_t limit) {
  auto page = self->state.projects->page(cursor, static_cast<size_t>(limit));
  for (auto& v : page.projects)
    if (project_view broken; broken_view(self, v.name, broken)) v = std::move(broken);
  return page;
}

// SIGTERM: every project lets its running job reach a phase boundary; answered when all have.
caf::result<bool> shut_down(self_ptr self, bool stop_apps, uint32_t grace_ms) {
  auto rp = self->make_response_promise<bool>();
  auto names = self->state.sup.child_ids();
  auto pending = std::make_shared<size_t>(names.size() + 1);
  auto done = [=]() mutable {
    if (--*pending == 0) rp.deliver(true);
  };
  auto limit = std::chrono::milliseconds(grace_ms) + std::chrono::seconds(40);
  for (auto& name : names)
    if (auto child = self->state.sup.which_child(name))
      self->request(child, limit, shutdown_atom_v, stop_apps, grace_ms)
          .then([=](bool) mutable { done(); }, [=](caf::error&) mutable { done(); });
    else
      done();
  done();
  return rp;
}

// Whether `name` is waiting for a retry after its actor failed (actors/project_parking.hpp).
bool parked_now(self_ptr self, const std::string& name) {
  auto it = self->state.failures.find(name);
  return it != self->state.failures.end() && it->second.in_a_row > 0;
}

// The live project's actor, started first when the project is dormant (it folds its stream
// and makes its folder; what is sent meanwhile waits in its mailbox). Null with `err` set
// when there is none to be had.
caf::actor awake(self_ptr self, const std::string& name, caf::error& err) {
  auto it = self->state.index.find(name);
  if (it == self->state.index.end() || it->second != name_status::live) {
    err = make_error(errc::not_found, "no project named '" + name + "'");
    return {};
  }
  if (project_view broken; broken_view(self, name, broken)) {
    err = make_error(errc::unavailable, "project '" + name + "' is broken (" + broken.broken_reason
                                            + "); berth retries it with backoff");
    return {};
  }
  if (auto child = self->state.sup.which_child(name)) return child;
  if (self->state.sup.has_child(name) || parked_now(self, name)) {
    err = make_error(errc::unavailable, "project '" + name + "' is restarting; retry");
    return {};
  }
  auto started = self->state.sup.start_child(project_spec(name, self->state));
  if (!started) {
    err = make_error(errc::unavailable, "project '" + name + "' cannot start: " + to_string(started.error()));
    return {};
  }
  return *started;
}

// Forwards a request to the live project's actor (woken if dormant); it answers the original
// requester.
template <class... Ts>
caf::result<void> to_project(self_ptr self, const std::string& name, Ts&&... xs) {
  caf::error err;
  auto child = awake(self, name, err);
  if (!child) return err;
  auto rp = self->make_response_promise();
  rp.delegate(child, std::forward<Ts>(xs)...);
  return rp;
}

// GET of a project: a dormant one is answered from the index (what its actor would say for
// that state), an awake one by its actor, with the stream's figures from the index.
caf::result<project_view> get(self_ptr self, const std::string& name) {
  auto it = self->state.index.find(name);
  if (it == self->state.index.end() || it->second != name_status::live)
    return make_error(errc::not_found, "no project named '" + name + "'");
  if (project_view broken; broken_view(self, name, broken)) return broken;
  auto child = self->state.sup.which_child(name);
  if (!child) {
    if (self->state.sup.has_child(name) || parked_now(self, name))
      return make_error(errc::unavailable, "project '" + name + "' is restarting; retry");
    if (auto v = self->state.projects->view(name)) return std::move(*v);
    return make_error(errc::not_found, "no project named '" + name + "'");
  }
  auto rp = self->make_response_promise<project_view>();
  self->request(child, child_timeout, get_atom_v)
      .then(
          [=](project_view& v) mutable {
            self->state.projects->stream_figures(name, v.last_seq, v.events);
            rp.deliver(std::move(v));
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

// The project's manifest replaced, through project:<name>. Its new domains are held for it
// while the update is recorded, then they are what it has (the old ones it dropped are free).
caf::result<project_view> update(self_ptr self, const std::string& name, manifest m) {
  if (auto refused = limits_refusal(self, m)) return refused;
  if (m.name == name)  // else project:<name> refuses it
    if (auto refused = domains_refusal(self, m)) return refused;
  caf::error err;
  auto child = awake(self, name, err);  // not_found, broken, restarting: refused there
  if (!child) return err;
  auto ticket = self->state.domains.hold(name, m.domains);
  auto rp = self->make_response_promise<project_view>();
  self->request(child, update_timeout, update_atom_v, std::move(m))
      .then(
          [=](project_view& v) mutable {
            self->state.domains.release(ticket);
            if (self->state.index.count(name)) self->state.domains.commit(name, v.spec.domains);
            self->state.projects->stream_figures(name, v.last_seq, v.events);
            rp.deliver(std::move(v));
          },
          [=](caf::error& err) mutable {
            self->state.domains.release(ticket);
            rp.deliver(std::move(err));
          });
  return rp;
}

// Forwards a request about a deployment to the project its id names.
template <class... Ts>
caf::result<void> to_deployment(self_ptr self, const std::string& id, Ts&&... xs) {
  std::string name;
  uint64_t seq = 0;
  if (!split_deployment_id(id, name, seq)) return make_error(errc::invalid_request, "invalid deployment id");
  if (self->state.index.count(name) == 0) return make_error(errc::not_found, "no deployment '" + id + "'");
  return to_project(self, name, std::forward<Ts>(xs)..., id);
}

}  // namespace

caf::behavior projects_actor(self_ptr self, std::string data_dir, deploy_settings settings,
                             std::shared_ptr<runtime_driver> driver, std::shared_ptr<backend_guards> guards,
                             std::shared_ptr<project_index> projects, std::shared_ptr<berth_metrics> metrics,
                             std::shared_ptr<traffic_meter> meter) {
  self->state.metrics = std::move(metrics);
  self->state.meter = std::move(meter);
  self->state.projects = std::move(projects);
  self->state.data_dir = std::move(data_dir);
  self->state.settings = std::move(settings);
  self->state.driver = std::move(driver);
  self->state.guards = std::move(guards);
  if (auto& sb = self->state.settings.sandbox; sb.enabled() && ::geteuid() == 0)
    self->state.uids.emplace(sb.uid_lo, sb.uid_hi);
  supervisor_flags flags;
  flags.intensity = 50;  // one crashing project must not take the others down
  flags.period = std::chrono::seconds(10);
  self->state.sup.init(self, flags, {});
  park_failing_projects(self);
  load_projects(self);
  return supervisor_handlers(self, self->state.sup)
      .or_else(
          [=](check_atom, const std::string& name) { return self->state.index.count(name) == 0; },
          [=](create_atom, manifest& m) { return create(self, std::move(m)); },
          [=](list_atom, const std::string& cursor, uint64_t limit) { return list_page(self, cursor, limit); },
          [=](get_atom, const std::string& name) { return get(self, name); },
          [=](project_up_atom, const std::string& name) { project_came_up(self, name); },
          [=](retry_project_atom, const std::string& name, uint64_t id) { retry_parked(self, name, id); },
          [=](broken_atom) { return broken_projects(self); },
          [=](update_atom, const std::string& name, manifest& m) { return update(self, name, std::move(m)); },
          [=](source_atom, const std::string& name, source_change& c) {
            return to_project(self, name, source_atom_v, std::move(c));
          },
          [=](delete_atom, const std::string& name) { return remove(self, name); },
          [=](preview_atom, const std::string& name, const std::string& action) {
            return to_project(self, name, preview_atom_v, action);
          },
          [=](deploy_atom, const std::string& name, bool force) { return to_project(self, name, deploy_atom_v, force); },
          [=](rollback_atom, const std::string& name, const std::string& hash) {
            return to_project(self, name, rollback_atom_v, hash);
          },
          [=](production_atom, const std::string& name, const std::string& action) {
            return to_project(self, name, production_atom_v, action);
          },
          [=](deployment_atom, const std::string& id) { return to_deployment(self, id, deployment_atom_v); },
          [=](cancel_atom, const std::string& id) { return to_deployment(self, id, cancel_atom_v); },
          [=](plan_atom, const std::string& name, const plan_request& r) { return to_project(self, name, plan_atom_v, r); },
          [=](verdict_atom, const std::string& verdict, const std::string& id) {
            return to_deployment(self, id, verdict_atom_v, verdict);
          },
          [=](subscribe_atom, const std::string& id) { return to_deployment(self, id, subscribe_atom_v); },
          [=](oneshot_atom, const std::string& name) { return oneshot(self, name); },
          [=](shutdown_atom, bool stop_apps, uint32_t grace_ms) { return shut_down(self, stop_apps, grace_ms); },
          [=](crash_atom, const std::string& name, const std::string& actor) {
            return to_project(self, name, crash_atom_v, actor);
          },
          [=](events_atom, const std::string& name, uint64_t from, uint64_t limit) {
            auto rp = self->make_response_promise();
            rp.delegate(store(self), read_stream_atom_v, project_stream(name), from, limit);
            return rp;
          });
}

}  // namespace berth
