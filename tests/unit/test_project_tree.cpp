#include <catch2/catch.hpp>

#include <filesystem>
#include <thread>

#include "actors/names.hpp"
#include "actors/tree.hpp"
#include "http/render.hpp"
#include "messages/atoms.hpp"
#include "runtime/files/layout.hpp"

using namespace berth;
namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

struct tree_fixture {
  config cfg;
  caf::actor_system_config sys_cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<event_log> log;
  caf::actor root;

  tree_fixture() {
    char tmpl[] = "/tmp/berth-tree-XXXXXX";
    cfg.data_dir = mkdtemp(tmpl);
    sys_cfg.add_message_types<caf::id_block::berth>();
    sys = std::make_unique<caf::actor_system>(sys_cfg);
    std::unique_ptr<event_log> l;
    REQUIRE(event_log::open(event_log_dir(cfg.data_dir).string(), event_log::mode::read_write, &l));
    log = std::move(l);
    boot();
  }
  void boot() { root = start_tree(*sys, cfg, log); }
  void shutdown() {
    caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
    caf::scoped_actor self{*sys};
    self->wait_for(root);
  }
  ~tree_fixture() {
    shutdown();
    sys.reset();
    fs::remove_all(cfg.data_dir);
  }

  template <class T, class... Ts>
  T ask(const caf::actor& dest, Ts&&... xs) {
    caf::scoped_actor self{*sys};
    T out{};
    if constexpr (std::is_same_v<T, std::string>) {  // a typed view, as http/ renders it
      self->send(dest, std::forward<Ts>(xs)...);
      self->receive([&](project_view& v) { out = to_json(v).dump(); },
                    [&](preview_view& v) { out = to_json(v).dump(); },
                    [&](project_page& page) {
                      json arr = json::array();
                      for (auto& v : page.projects) arr.push_back(to_json(v));
                      out = arr.dump();
                    },
                    [&](bool b) { out = json(b).dump(); }, [&](caf::error& e) { FAIL(sys->render(e)); },
                    caf::after(std::chrono::seconds(10)) >> [&] { FAIL("no answer"); });
    } else {
      self->request(dest, caf::duration{10s}, std::forward<Ts>(xs)...)
          .receive([&](T& v) { out = std::move(v); }, [&](caf::error& e) { FAIL(sys->render(e)); });
    }
    return out;
  }
  caf::actor projects() {
    for (int i = 0; i < 200; ++i) {
      if (auto p = names::whereis(*sys, names::projects)) return p;
      std::this_thread::sleep_for(10ms);
    }
    FAIL("projects actor never registered");
    return {};
  }
  // Waits until `which_child(id)` of `sup` answers a handle different from `old`.
  caf::actor restarted(const caf::actor& sup, const std::string& id, const caf::actor& old) {
    for (int i = 0; i < 300; ++i) {
      caf::scoped_actor self{*sys};
      caf::actor now;
      self->request(sup, caf::duration{1s}, which_child_atom_v, id)
          .receive([&](caf::actor& a) { now = a; }, [&](caf::error&) {});
      if (now && now != old) return now;
      std::this_thread::sleep_for(10ms);
    }
    FAIL("child " << id << " was not restarted");
    return {};
  }
  manifest sample(const std::string& name) {
    manifest m;
    m.name = name;
    m.source_path = "/srv/" + name;
    m.env["MODE"] = "test";
    return m;
  }
};

}  // namespace

TEST_CASE("a crashed project actor is restarted and rebuilds the same state from its log",
          "[tree]") {
  tree_fixture f;
  auto created = json::parse(f.ask<std::string>(f.projects(), create_atom_v, f.sample("shop")));
  auto updated_manifest = f.sample("shop");
  updated_manifest.env["MODE"] = "changed";
  f.ask<std::string>(f.projects(), update_atom_v, std::string{"shop"}, updated_manifest);
  auto project = f.ask<caf::actor>(f.projects(), which_child_atom_v, std::string{"shop"});
  auto before = f.ask<std::string>(project, status_atom_v);

  caf::anon_send(project, crash_atom_v);
  auto again = f.restarted(f.projects(), "shop", project);
  CHECK(f.ask<std::string>(again, status_atom_v) == before);
  CHECK(json::parse(before)["manifest"]["env"]["MODE"] == "changed");
  CHECK(json::parse(before)["ports"] == created["ports"]);
}

TEST_CASE("a crashed environment is restarted by its project, the project lives on", "[tree]") {
  tree_fixture f;
  f.ask<std::string>(f.projects(), create_atom_v, f.sample("blog"));
  // A new project is dormant: a command wakes it.
  f.ask<std::string>(f.projects(), preview_atom_v, std::string{"blog"}, std::string{"stop"});
  auto project = f.ask<caf::actor>(f.projects(), which_child_atom_v, std::string{"blog"});
  auto preview = f.ask<caf::actor>(project, which_child_atom_v, std::string{"preview"});
  f.ask<std::string>(preview, status_atom_v);  // it has started and made its folders
  auto paths = paths_for(f.cfg.data_dir, "blog");
  fs::remove_all(paths.preview);  // the restarted preview actor recreates its folders

  caf::anon_send(preview, crash_atom_v);
  f.restarted(project, "preview", preview);
  CHECK(fs::is_directory(paths.preview_src));
  CHECK(f.ask<caf::actor>(f.projects(), which_child_atom_v, std::string{"blog"}) == project);
  auto full = json::parse(f.ask<std::string>(f.projects(), get_atom_v, std::string{"blog"}));
  CHECK(full["environments"]["preview"]["status"] == "stopped");
}

TEST_CASE("a whole new tree over the same log yields the same projects", "[tree]") {
  tree_fixture f;
  for (auto* name : {"one", "two", "three"}) f.ask<std::string>(f.projects(), create_atom_v, f.sample(name));
  f.ask<std::string>(f.projects(), delete_atom_v, std::string{"two"});
  auto before = f.ask<std::string>(f.projects(), list_atom_v, std::string{}, uint64_t{100});
  CHECK(json::parse(before).size() == 2);

  f.shutdown();
  f.boot();
  CHECK(f.ask<std::string>(f.projects(), list_atom_v, std::string{}, uint64_t{100}) == before);
  CHECK_FALSE(fs::exists(paths_for(f.cfg.data_dir, "two").root));
  CHECK(f.ask<bool>(f.projects(), check_atom_v, std::string{"two"}));
  CHECK_FALSE(f.ask<bool>(f.projects(), check_atom_v, std::string{"one"}));
}

TEST_CASE("reconciliation removes leftovers of an interrupted create", "[tree]") {
  tree_fixture f;
  f.ask<std::string>(f.projects(), create_atom_v, f.sample("real"));
  f.shutdown();
  // What a crash between "folder created" and "project_created appended" leaves behind.
  fs::create_directories(paths_for(f.cfg.data_dir, "ghost").preview_src);
  f.boot();
  f.projects();
  for (int i = 0; i < 200 && fs::exists(paths_for(f.cfg.data_dir, "ghost").root); ++i)
    std::this_thread::sleep_for(10ms);
  CHECK_FALSE(fs::exists(paths_for(f.cfg.data_dir, "ghost").root));
  CHECK(fs::exists(paths_for(f.cfg.data_dir, "real").root));
}
