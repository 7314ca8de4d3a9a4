#include "actors/projects.hpp"

#include <filesystem>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/names.hpp"
#include "actors/project.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "runtime/layout.hpp"

namespace berth {

namespace {

using self_ptr = caf::stateful_actor<projects_state>*;
using json = nlohmann::json;
namespace fs = std::filesystem;
constexpr auto store_timeout = std::chrono::seconds(30);
constexpr auto child_timeout = std::chrono::seconds(5);

caf::actor store(self_ptr self) { return names::whereis(self->system(), names::event_store); }
caf::actor ports(self_ptr self) { return names::whereis(self->system(), names::ports); }

child_spec project_spec(const std::string& name, const std::string& data_dir) {
  return {name,
          [=](caf::actor_system& sys) { return sys.spawn(project_actor, name, data_dir); },
          restart_type::transient};
}

// The log is the truth: folders and leases that belong to no live project are leftovers of
// a crash between steps, and go.
void reconcile(self_ptr self) {
  std::vector<std::string> live;
  for (auto& [name, st] : self->state.index) live.push_back(name);
  self->request(ports(self), store_timeout, reconcile_atom_v, live)
      .then([](uint64_t released) {
              if (released > 0) spdlog::warn("reconcile: released {} orphaned leases", released);
            },
            [](caf::error& err) { spdlog::error("reconcile: port leases: {}", to_string(err)); });
  std::error_code ec;
  for (auto& entry : fs::directory_iterator(projects_root(self->state.data_dir), ec)) {
    auto name = entry.path().filename().string();
    if (self->state.index.count(name) == 0) {
      spdlog::warn("reconcile: removing folder of a project that does not exist: {}", name);
      fs::remove_all(entry.path(), ec);
    }
  }
}

// Rebuilds the index from the last event of every project stream, then starts the children.
void load(self_ptr self) {
  self->request(store(self), store_timeout, list_streams_atom_v, std::string{project_stream_prefix})
      .await(
          [=](std::vector<std::string>& streams) {
            auto pending = std::make_shared<size_t>(streams.size());
            auto finish = [=] {
              self->state.loaded = true;
              spdlog::info("projects: {} live projects restored", self->state.index.size());
              reconcile(self);
            };
            if (streams.empty()) return finish();
            for (auto& stream : streams) {
              self->request(store(self), store_timeout, last_event_atom_v, stream)
                  .await(
                      [=](std::vector<event_record>& last) {
                        if (!last.empty() && last.front().type != ev::project_deleted) {
                          auto name = stream.substr(std::string{project_stream_prefix}.size());
                          self->state.index[name] = name_status::live;
                          self->state.sup.start_child(project_spec(name, self->state.data_dir));
                        }
                        if (--*pending == 0) finish();
                      },
                      [=](caf::error& err) { self->quit(err); });
            }
          },
          [=](caf::error& err) { self->quit(err); });
}

// Compensation for a creation that failed after leasing ports.
void undo_create(self_ptr self, const std::string& name) {
  remove_project_dir(paths_for(self->state.data_dir, name));
  self->send(ports(self), release_atom_v, name, std::string{"creation failed"});
  self->state.index.erase(name);
}

caf::result<std::string> create(self_ptr self, manifest m) {
  auto name = m.name;
  if (self->state.index.count(name))
    return make_error(errc::already_exists, "a project named '" + name + "' already exists");
  self->state.index[name] = name_status::creating;
  auto rp = self->make_response_promise<std::string>();
  auto fail = [=](caf::error err) mutable {
    undo_create(self, name);
    rp.deliver(std::move(err));
  };
  self->request(ports(self), store_timeout, lease_atom_v, name)
      .then(
          [=](port_assignment& ports) mutable {
            auto paths = paths_for(self->state.data_dir, name);
            if (auto s = create_project_dirs(paths); !s)
              return fail(make_error(errc::storage_error, s.message()));
            if (auto s = write_secrets_file(paths, m.secrets); !s)
              return fail(make_error(errc::storage_error, s.message()));
            if (auto s = write_env_file(paths, name, ports.production, ports.preview, m.env); !s)
              return fail(make_error(errc::storage_error, s.message()));
            std::vector<new_event> events{
                {project_stream(name), ev::project_created,
                 project_created_data(m, ports.production, ports.preview)}};
            self->request(store(self), store_timeout, append_atom_v, std::move(events))
                .then(
                    [=](std::vector<event_record>& stored) mutable {
                      self->state.index[name] = name_status::live;
                      if (auto child = self->state.sup.start_child(project_spec(name, self->state.data_dir)); !child)
                        spdlog::error("projects: cannot start project actor {}: {}", name,
                                      to_string(child.error()));
                      project_state st;
                      for (auto& e : stored) fold(st, e);
                      rp.deliver(to_json(st).dump());
                    },
                    [=](caf::error& err) mutable { fail(err); });
          },
          [=](caf::error& err) mutable { fail(err); });
  return rp;
}

caf::result<std::string> remove(self_ptr self, const std::string& name) {
  auto it = self->state.index.find(name);
  if (it == self->state.index.end() || it->second != name_status::live)
    return make_error(errc::not_found, "no project named '" + name + "'");
  it->second = name_status::deleting;
  auto rp = self->make_response_promise<std::string>();
  std::vector<new_event> events{{project_stream(name), ev::project_deleted, "{}"}};
  // The event first: once it is durable the project is gone, and the steps after it are
  // repeated by reconcile() if berth dies half-way.
  self->request(store(self), store_timeout, append_atom_v, std::move(events))
      .then(
          [=](std::vector<event_record>&) mutable {
            // The project actor owns the folder: remove it only once the actor is gone.
            auto finish = [=]() mutable {
              remove_project_dir(paths_for(self->state.data_dir, name));
              self->state.index.erase(name);
              self->request(ports(self), store_timeout, release_atom_v, name, std::string{"deleted"})
                  .then([=](uint64_t) mutable { rp.deliver(json{{"deleted", name}}.dump()); },
                        [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
            };
            // Deleting stops the project's processes; a plain berth shutdown does not.
            auto child = self->state.sup.which_child(name);
            if (!child) {
              if (!self->state.sup.terminate_child(name, finish)) finish();
              return;
            }
            self->request(child, std::chrono::seconds(30), preview_atom_v, std::string{"stop"})
                .then([=](std::string&) mutable {
                        if (!self->state.sup.terminate_child(name, finish)) finish();
                      },
                      [=](caf::error&) mutable {
                        if (!self->state.sup.terminate_child(name, finish)) finish();
                      });
          },
          [=](caf::error& err) mutable {
            self->state.index[name] = name_status::live;
            rp.deliver(std::move(err));
          });
  return rp;
}

caf::result<std::string> list(self_ptr self) {
  auto rp = self->make_response_promise<std::string>();
  auto names = self->state.sup.child_ids();
  auto results = std::make_shared<std::map<std::string, json>>();
  auto pending = std::make_shared<size_t>(names.size());
  auto finish = [=]() mutable {
    json arr = json::array();
    for (auto& [name, j] : *results) arr.push_back(std::move(j));
    rp.deliver(arr.dump());
  };
  if (names.empty()) {
    finish();
    return rp;
  }
  for (auto& name : names) {
    self->request(self->state.sup.which_child(name), child_timeout, status_atom_v)
        .then(
            [=](std::string& s) mutable {
              (*results)[name] = json::parse(s, nullptr, false);
              if (--*pending == 0) finish();
            },
            [=](caf::error&) mutable {
              (*results)[name] = json{{"name", name}, {"status", "unavailable"}};
              if (--*pending == 0) finish();
            });
  }
  return rp;
}

// Forwards a request to the live project's actor; it answers the original requester.
template <class... Ts>
caf::result<std::string> to_project(self_ptr self, const std::string& name, Ts&&... xs) {
  auto it = self->state.index.find(name);
  auto child = self->state.sup.which_child(name);
  if (it == self->state.index.end() || it->second != name_status::live || !child)
    return make_error(errc::not_found, "no project named '" + name + "'");
  auto rp = self->make_response_promise();
  rp.delegate(child, std::forward<Ts>(xs)...);
  return rp;
}

}  // namespace

caf::behavior projects_actor(self_ptr self, std::string data_dir) {
  self->state.data_dir = std::move(data_dir);
  supervisor_flags flags;
  flags.intensity = 50;  // one crashing project must not take the others down
  flags.period = std::chrono::seconds(10);
  self->state.sup.init(self, flags, {});
  load(self);
  return supervisor_handlers(self, self->state.sup)
      .or_else(
          [=](check_atom, const std::string& name) {
            return self->state.index.count(name) == 0;
          },
          [=](create_atom, manifest& m) { return create(self, std::move(m)); },
          [=](list_atom) { return list(self); },
          [=](get_atom, const std::string& name) { return to_project(self, name, get_atom_v); },
          [=](update_atom, const std::string& name, manifest& m) {
            return to_project(self, name, update_atom_v, std::move(m));
          },
          [=](delete_atom, const std::string& name) { return remove(self, name); },
          [=](preview_atom, const std::string& name, const std::string& action) {
            return to_project(self, name, preview_atom_v, action);
          },
          [=](events_atom, const std::string& name, uint64_t from, uint64_t limit) {
            auto rp = self->make_response_promise();
            rp.delegate(store(self), read_stream_atom_v, project_stream(name), from, limit);
            return rp;
          });
}

}  // namespace berth
