#include "actors/projects_load.hpp"

#include <algorithm>

#include <filesystem>
#include <limits>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "actors/blocking.hpp"
#include "actors/names.hpp"
#include "actors/project.hpp"
#include "actors/project_source.hpp"
#include "messages/atoms.hpp"
#include "runtime/files/fs_util.hpp"
#include "runtime/files/layout.hpp"
#include "runtime/logs/logging.hpp"

namespace berth {

using self_ptr = caf::stateful_actor<projects_state>*;

void count_projects(const projects_state& st) {
  if (!st.metrics) return;
  st.metrics->projects.set(static_cast<double>(std::count_if(
      st.index.begin(), st.index.end(), [](auto& kv) { return kv.second != name_status::creating; })));
}

child_spec project_spec(const std::string& name, const projects_state& st) {
  environment env{name, paths_for(st.data_dir, name), st.settings, st.driver, st.guards};
  if (st.uids) env.sandbox = {st.uids->of(name), st.uids->of(name)};
  env.metrics = st.metrics;
  env.meter = st.meter;
  return {name, [env](caf::actor_system& sys) { return sys.spawn(project_actor, env); }, restart_type::transient};
}

namespace {

namespace fs = std::filesystem;
constexpr auto store_timeout = std::chrono::seconds(30);

caf::actor store(self_ptr self) { return names::whereis(self->system(), names::event_store); }
caf::actor ports(self_ptr self) { return names::whereis(self->system(), names::ports); }

// The log is the truth: folders and leases that belong to no live project are leftovers of
// a crash between steps, and go. Creations are taken while this runs, so a name is checked
// against the index when its leftover is removed, never against a list taken before.
void reconcile(self_ptr self) {
  std::vector<std::string> live;
  for (auto& [name, st] : self->state.index) live.push_back(name);
  // Sent before any creation's lease request (the load held the mailbox): no new lease is lost.
  self->request(ports(self), store_timeout, reconcile_atom_v, live)
      .then([](uint64_t released) {
              if (released > 0) spdlog::warn("reconcile: released {} orphaned leases", released);
            },
            [](caf::error& err) { spdlog::error("reconcile: port leases: {}", to_string(err)); });
  auto root = projects_root(self->state.data_dir);
  std::set<std::string> known(live.begin(), live.end());
  // Folders: a quick walk of one directory, with the mailbox held so no creation runs meanwhile.
  // Uploads a crash cut short go too; a source change it interrupted wakes its project.
  auto interrupted = std::make_shared<std::vector<std::string>>();
  auto data_dir = self->state.data_dir;
  run_blocking(
      self,
      [=] {
        std::error_code ec;
        for (auto& entry : fs::directory_iterator(root, ec)) {
          auto name = entry.path().filename().string();
          if (known.count(name)) {
            if (sweep_uploads(paths_for(data_dir, name))) interrupted->push_back(name);
            continue;
          }
          log_kv(spdlog::level::warn, "reconcile: removing the folder of a project that does not exist",
                 project_fields(name));
          fsutil::force_remove(entry.path());
        }
      },
      [=](const std::string&) {
        for (auto& name : *interrupted)
          if (self->state.index.count(name) && !self->state.sup.has_child(name))
            self->state.sup.start_child(project_spec(name, self->state));
      },
      while_blocked::hold);
  // Containers, images and services of projects the log does not know (deleted while a removal
  // was half done, or never recorded): listed on a worker (the engine may be slow), checked
  // against the index as it is then, and removed. Processes of such projects end with their
  // folders' sandboxes; berth's own (the proxy) have no project.
  auto driver = self->state.driver;
  auto grace = std::chrono::milliseconds(self->state.settings.stop_grace_ms);
  auto found = std::make_shared<std::vector<instance_ref>>();
  run_blocking(
      self,
      [=] {
        for (const char* runtime : {"docker", "swarm"})
          if (driver->runtime_unavailable(runtime).empty())
            for (auto& r : driver->list({"", "", "", runtime}))
              if (!r.project.empty() && !known.count(r.project)) found->push_back(r);
      },
      [=](const std::string&) {
        std::vector<instance_ref> orphans;
        for (auto& r : *found)
          if (!self->state.index.count(r.project)) orphans.push_back(r);
        if (orphans.empty()) return;
        run_blocking(
            self,
            [=] {
              std::set<std::string> projects;
              for (auto& r : orphans) {
                log_kv(spdlog::level::warn, "reconcile: stopping " + r.id + " of a project that does not exist",
                       project_fields(r.project));
                driver->stop(r, grace);
                projects.insert(r.project);
              }
              for (auto& name : projects)
                if (auto s = driver->remove_project(name); !s)
                  log_kv(spdlog::level::warn, "reconcile: removing what the runtimes keep: " + s.message(),
                         project_fields(name));
            },
            [](const std::string&) {});
      });
}

// The live projects' uids held again; a project without one (made by an older berth, or
// sandbox uids turned on since) is given the lowest free uid, recorded (sandbox_assigned)
// before its processes start. An unreadable project gets none: its uid is in the part of its
// stream that cannot be read, and it starts nothing while it is broken.
void hold_uids(self_ptr self, const std::map<std::string, uint32_t>& live, const std::set<std::string>& unreadable,
               std::function<void()> then) {
  auto& uids = self->state.uids;
  if (!uids) return then();
  std::vector<std::string> missing;
  for (auto& [name, uid] : live)
    if (!unreadable.count(name) && (uid == 0 || !uids->hold(name, uid))) missing.push_back(name);
  std::vector<new_event> events;
  for (auto& name : missing) {
    auto uid = uids->take(name);
    if (!uid) {
      log_kv(spdlog::level::err,
             fmt::format("projects: no free sandbox uid in {}-{}: its processes cannot start", uids->lo(), uids->hi()),
             project_fields(name));
      continue;
    }
    events.push_back({project_stream(name), ev::sandbox_assigned, sandbox_assigned_data(*uid, *uid)});
  }
  if (events.empty()) return then();
  self->request(store(self), store_timeout, append_atom_v, std::move(events))
      .await([=](std::vector<event_record>&) { then(); }, [=](caf::error& err) { self->quit(err); });
}

}  // namespace

// Names, domains and uids from the project index (no stream is read); only the projects
// where something runs or must be reconciled get their actor, the others stay dormant.
void load_projects(self_ptr self) {
  auto listed = self->state.projects->projects();
  std::map<std::string, uint32_t> live;  // name -> uid in the log
  std::set<std::string> unreadable;
  auto wake = std::make_shared<std::vector<std::string>>();
  for (auto& p : listed) {
    live[p.name] = p.sandbox_uid;
    if (p.unreadable) {
      // Its actor fails at start and is parked as broken (actors/project_parking.hpp), while
      // berth and every other project go on; its folder and leases are kept.
      unreadable.insert(p.name);
    } else {
      self->state.domains.commit(p.name, std::move(p.domains));
    }
    if (p.needs_actor) wake->push_back(p.name);
  }
  hold_uids(self, live, unreadable, [=] {
    for (auto& [name, uid] : live) self->state.index[name] = name_status::live;
    for (auto& name : *wake) self->state.sup.start_child(project_spec(name, self->state));
    self->state.loaded = true;
    count_projects(self->state);
    spdlog::info("projects: {} live projects restored, {} awake", self->state.index.size(), wake->size());
    reconcile(self);
  });
}

}  // namespace berth
