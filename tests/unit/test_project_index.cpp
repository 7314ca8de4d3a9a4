// The project index (runtime/state/project_index.hpp) over a real event log: what it folds,
// pages, drops, and which projects it says need their actor.
#include <catch2/catch.hpp>

#include <filesystem>

#include "messages/manifest.hpp"
#include "runtime/state/project_index.hpp"

using namespace berth;
namespace fs = std::filesystem;

namespace {

struct index_fixture {
  std::string dir;
  std::shared_ptr<event_log> log;
  std::shared_ptr<project_index> index;

  index_fixture() {
    char tmpl[] = "/tmp/berth-index-XXXXXX";
    dir = mkdtemp(tmpl);
    std::unique_ptr<event_log> l;
    REQUIRE(event_log::open(dir + "/events", event_log::mode::read_write, &l));
    log = std::move(l);
    index = std::make_shared<project_index>(index_view_settings{{}, dir, {}});
    index->load(log);
  }
  ~index_fixture() {
    index.reset();
    log.reset();
    fs::remove_all(dir);
  }
  // Appends like the event_store, and feeds the index the committed records.
  void append(std::vector<new_event> events) {
    std::vector<event_record> out;
    REQUIRE(log->append(events, true, &out));
    index->apply(out);
  }
  void create(const std::string& name, uint16_t port) {
    manifest m;
    m.name = name;
    m.source_path = "/srv/" + name;
    append({{project_stream(name), ev::project_created, project_created_data(m, port, port + 1000)}});
  }
};

}  // namespace

TEST_CASE("project index - pages by name, drops deleted projects, and a reload folds the same", "[index]") {
  index_fixture f;
  for (int i = 0; i < 25; ++i) f.create("p" + std::to_string(100 + i), static_cast<uint16_t>(8000 + i));
  f.append({{project_stream("p105"), ev::project_deleted, "{}"}});
  CHECK(f.index->size() == 24);
  CHECK_FALSE(f.index->view("p105"));

  std::vector<std::string> names;
  std::string cursor;
  int pages = 0;
  do {
    auto page = f.index->page(cursor, 10);
    ++pages;
    for (auto& v : page.projects) names.push_back(v.name);
    cursor = page.next_cursor;
  } while (!cursor.empty());
  CHECK(pages == 3);
  REQUIRE(names.size() == 24);
  CHECK(std::is_sorted(names.begin(), names.end()));

  auto v = f.index->view("p101");
  REQUIRE(v);
  CHECK(v->with_environments);
  CHECK(v->production_port == 8001);
  CHECK(v->production.status == "none");
  CHECK(v->preview.status == "stopped");
  CHECK(v->preview.port == 9001);
  for (auto& p : f.index->projects()) CHECK_FALSE(p.needs_actor);

  project_index again(index_view_settings{{}, f.dir, {}});
  again.load(f.log);
  CHECK(again.size() == 24);
  auto page = again.page("", 1000);
  REQUIRE(page.projects.size() == 24);
  CHECK(page.next_cursor.empty());
  CHECK(page.projects[1].name == names[1]);
}

TEST_CASE("project index - a running production or preview needs its actor, a stopped one does not", "[index]") {
  project_state s;
  s.exists = true;
  CHECK_FALSE(needs_actor(s));
  s.production.status = "stopped";
  CHECK_FALSE(needs_actor(s));
  s.production.status = "running";
  CHECK(needs_actor(s));
  s.production.status = "crashed";
  s.preview.status = "running";
  CHECK(needs_actor(s));
  s.preview.status = "stopped";
  deployment_record d;
  d.current = phase::queued;
  s.production.deployments["x.1"] = d;
  CHECK(needs_actor(s));
}
