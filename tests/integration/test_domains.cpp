// Custom domains per project (manifest `domains`) through a real `berth serve`: bad ones are
// refused with 400 and nothing is created; a domain another project has is refused with 409
// naming it, also when two creates race; domains are free once their project drops them or
// is deleted, and survive a restart; in proxy mode the production route carries them (the
// `proxy` stream of the log) and a request with Host: <domain> reaches the project.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "messages/proxy.hpp"
#include "runtime/eventlog/event_log.hpp"
#include "runtime/files/layout.hpp"
#include "tests/integration/cli_support.hpp"
#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

json with_domains(const std::string& name, const std::string& src, json domains) {
  auto m = manifest_for(name, src);
  m["domains"] = std::move(domains);
  return m;
}

// Creates `m`, which must succeed.
void create_ok(server& srv, const json& m) {
  auto r = srv.api().post("/api/projects", m);
  INFO(r.describe());
  REQUIRE(r.status == 201);
}

// The error of a refused request: its status, its code, and that its message says `says`.
void refused(const http_result& r, int status, const std::string& code, const std::string& says) {
  INFO(r.describe());
  CHECK(r.status == status);
  CHECK(r.error_code() == code);
  if (r.is_json_error()) CHECK_THAT(r.body["error"].value("message", ""), Catch::Contains(says));
}

json manifest_of(server& srv, const std::string& name) {
  auto r = srv.api().get("/api/projects/" + name);
  INFO(r.describe());
  REQUIRE(r.status == 200);
  return r.body.at("manifest");
}

std::string caddy_binary() {
  for (const char* p : {"/usr/bin/caddy", "/usr/local/bin/caddy"})
    if (::access(p, X_OK) == 0) return p;
  return "";
}

// The production route of `project` as the proxy's log has it last (null: none), read from a
// read-only view of the log next to the running server: what the proxy was told, whichever
// engine serves it.
json route_in_log(const std::string& data_dir, const std::string& project) {
  std::unique_ptr<berth::event_log> log;
  auto opened = berth::event_log::open(berth::event_log_dir(data_dir).string(), berth::event_log::mode::read_only, &log);
  INFO(opened.message());
  REQUIRE(opened);
  std::vector<berth::event_record> events;
  REQUIRE(log->read_stream(berth::proxy_stream, 0, 0, &events));
  json last;
  for (auto& e : events) {
    auto data = json::parse(e.data, nullptr, false);
    if (!data.is_object() || data.value("id", "") != project + "-production") continue;
    if (e.type == berth::ev::route_set) last = data;
    if (e.type == berth::ev::route_removed) last = nullptr;
  }
  return last;
}

// A berth in proxy mode with the site app "site" deployed, its manifest naming `domains`.
struct proxy_site {
  temp_dir tmp;
  std::unique_ptr<server> srv;
  uint16_t http_port = 0, stable = 0;
  std::string src;

  explicit proxy_site(json domains) {
    srv = std::make_unique<server>(tmp.path(), deploy_server_options({"--switch-mode", "proxy", "--caddy",
                                                                       caddy_binary(), "--drain-ms", "300"}));
    json proxy;
    REQUIRE(eventually(
        [&] {
          proxy = srv->health().value("proxy", json::object());
          return proxy.value("status", "") == "running";
        },
        15s));
    http_port = proxy.at("http_port").get<uint16_t>();  // the shared host listener
    src = make_site(tmp, "site", "1");
    auto m = site_manifest("site", src, 5, 15);
    m["domains"] = std::move(domains);
    create_ok(*srv, m);
    auto r = srv->api().post("/api/projects/site/deployments", std::string{});
    INFO(r.describe());
    REQUIRE(r.status == 202);
    auto d = wait_done(srv->api(), r.body.at("id").get<std::string>(), 60s);
    INFO(brief(d) << "\n" << srv->log());
    REQUIRE(d.value("status", "") == "completed");
    auto p = srv->api().get("/api/projects/site");
    REQUIRE(p.status == 200);
    stable = p.body.at("ports").at("production").get<uint16_t>();
    REQUIRE(eventually([&] { return fetch(stable).body == "release 1\n"; }, 5s));
  }
  // PUT the site's manifest with `domains`.
  void set_domains(json domains) {
    auto m = manifest_of(*srv, "site");
    m["domains"] = std::move(domains);
    auto r = srv->api().put("/api/projects/site", m);
    INFO(r.describe());
    REQUIRE(r.status == 200);
  }
};

}  // namespace

TEST_CASE("domains: bad domains get 400 invalid_manifest naming the field and nothing is created",
          "[integration][domains]") {
  temp_dir tmp;
  server srv(tmp.path());  // its domain suffix is the default, localhost
  std::filesystem::create_directories(tmp / "src");
  json twenty_one = json::array();
  for (int i = 0; i < 21; ++i) twenty_one.push_back("d" + std::to_string(i) + ".example.com");
  struct bad_case {
    json domains;
    std::string says;
  };
  auto before = srv.event_count();
  for (auto& c : std::vector<bad_case>{{{"*.example.com"}, "domains[0]: '*.example.com' must not be a wildcard"},
                                       {{"ok.example.com", "Shop.Example.com"}, "domains[1]: 'Shop.Example.com' must be lowercase"},
                                       {{"10.0.0.1"}, "domains[0]: '10.0.0.1' must be a DNS name, not an IP address"},
                                       {{"shop"}, "domains[0]: 'shop' needs at least two labels"},
                                       {{"-shop.example.com"}, "domains[0]: '-shop.example.com' has a label"},
                                       {{"a.example.com", "a.example.com"}, "domains[1]: 'a.example.com' is named twice"},
                                       {twenty_one, "domains: has too many entries"},
                                       {"shop.example.com", "domains: must be an array"},
                                       {{"shop.localhost"}, "domains[0]: 'shop.localhost' is under this server's domain suffix"},
                                       {{"localhost.localhost"}, "is under this server's domain suffix"}}) {
    INFO(c.domains.dump());
    refused(srv.api().post("/api/projects", with_domains("shop", tmp / "src", c.domains)), 400, "invalid_manifest",
            c.says);
  }
  CHECK(srv.api().get("/api/projects/shop").status == 404);
  CHECK(srv.event_count() == before);
  CHECK(list_dir(srv.projects_dir()).empty());

  // An update is held to the same rules, and changes nothing either.
  create_ok(srv, manifest_for("shop", tmp / "src"));
  auto created = srv.event_count();
  auto m = manifest_of(srv, "shop");
  m["domains"] = {"shop.localhost"};
  refused(srv.api().put("/api/projects/shop", m), 400, "invalid_manifest", "domains[0]: 'shop.localhost'");
  m["domains"] = {"*.example.com"};
  refused(srv.api().put("/api/projects/shop", m), 400, "invalid_manifest", "domains[0]");
  CHECK(srv.event_count() == created);
  CHECK_FALSE(manifest_of(srv, "shop").contains("domains"));
}

TEST_CASE("domains: a domain another project has gets 409 naming it and is free once that project drops it",
          "[integration][domains]") {
  temp_dir tmp;
  server srv(tmp.path());
  std::filesystem::create_directories(tmp / "src");
  auto src = tmp / "src";
  create_ok(srv, with_domains("shop", src, {"shop.example.com", "www.shop.example.com"}));
  CHECK(manifest_of(srv, "shop")["domains"] == json({"shop.example.com", "www.shop.example.com"}));

  // A create naming one of them: refused, nothing appended, nothing created.
  auto before = srv.event_count();
  refused(srv.api().post("/api/projects", with_domains("blog", src, {"blog.example.com", "www.shop.example.com"})), 409,
          "conflict", "domains[1]: 'www.shop.example.com' is a domain of project 'shop'");
  CHECK(srv.api().get("/api/projects/blog").status == 404);
  CHECK(srv.event_count() == before);
  CHECK(list_dir(srv.projects_dir()) == std::set<std::string>{"shop"});

  // An update naming one of them: refused, the manifest as it was.
  create_ok(srv, with_domains("blog", src, {"blog.example.com"}));
  before = srv.event_count();
  auto blog = manifest_of(srv, "blog");
  blog["domains"] = {"blog.example.com", "shop.example.com"};
  refused(srv.api().put("/api/projects/blog", blog), 409, "conflict", "'shop.example.com' is a domain of project 'shop'");
  CHECK(srv.event_count() == before);
  CHECK(manifest_of(srv, "blog")["domains"] == json({"blog.example.com"}));
  // A project may keep its own domains across an update.
  auto shop = manifest_of(srv, "shop");
  shop["env"] = {{"X", "1"}};
  REQUIRE(srv.api().put("/api/projects/shop", shop).status == 200);

  // shop drops www.shop.example.com: blog may take it.
  shop["domains"] = {"shop.example.com"};
  auto dropped = srv.api().put("/api/projects/shop", shop);
  INFO(dropped.describe());
  REQUIRE(dropped.status == 200);
  blog["domains"] = {"blog.example.com", "www.shop.example.com"};
  auto took = srv.api().put("/api/projects/blog", blog);
  INFO(took.describe());
  REQUIRE(took.status == 200);
  CHECK(manifest_of(srv, "blog")["domains"] == json({"blog.example.com", "www.shop.example.com"}));

  // shop deleted: its domains are free for a new project.
  REQUIRE(srv.api().del("/api/projects/shop").status == 200);
  create_ok(srv, with_domains("store", src, {"shop.example.com"}));
  refused(srv.api().post("/api/projects", with_domains("other", src, {"www.shop.example.com"})), 409, "conflict",
          "project 'blog'");
}

TEST_CASE("domains: two creates at once naming one domain - exactly one wins", "[integration][domains]") {
  temp_dir tmp;
  server srv(tmp.path());
  std::filesystem::create_directories(tmp / "src");
  constexpr int racers = 6;
  std::vector<http_result> answers(racers);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < racers; ++i)
    threads.emplace_back([&, i] {
      client c(srv.port());
      auto m = with_domains("racer" + std::to_string(i), tmp / "src", {"race.example.com"});
      ++ready;
      while (ready.load() < racers) std::this_thread::yield();
      answers[i] = c.post("/api/projects", m);
    });
  for (auto& t : threads) t.join();
  int won = 0, conflicts = 0;
  for (auto& a : answers) {
    INFO(a.describe());
    if (a.status == 201) ++won;
    if (a.status == 409 && a.error_code() == "conflict") ++conflicts;
  }
  CHECK(won == 1);
  CHECK(conflicts == racers - 1);
  auto list = srv.api().get("/api/projects");
  REQUIRE(list.status == 200);
  CHECK(list.body.at("projects").size() == 1);
}

TEST_CASE("domains: a project's domains survive a berth restart", "[integration][domains]") {
  temp_dir tmp;
  server srv(tmp.path());
  std::filesystem::create_directories(tmp / "src");
  create_ok(srv, with_domains("shop", tmp / "src", {"shop.example.com"}));
  create_ok(srv, with_domains("gone", tmp / "src", {"gone.example.com"}));
  REQUIRE(srv.api().del("/api/projects/gone").status == 200);
  srv.restart();
  CHECK(manifest_of(srv, "shop")["domains"] == json({"shop.example.com"}));
  refused(srv.api().post("/api/projects", with_domains("blog", tmp / "src", {"shop.example.com"})), 409, "conflict",
          "'shop.example.com' is a domain of project 'shop'");
  // A deleted project's domain stays free across the restart.
  create_ok(srv, with_domains("again", tmp / "src", {"gone.example.com"}));
}

TEST_CASE("domains: a TOML manifest names them and berth projects show lists them", "[integration][domains][cli]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto env = cli_env(srv);
  std::filesystem::create_directories(tmp / "src");
  write_file(tmp / "shop.toml", "name = \"shop\"\ndomains = [\"shop.example.com\", \"www.shop.example.com\"]\n"
                                "[source]\npath = \"" + tmp / "src" + "\"\n");
  auto created = run_cli({"projects", "create", "-f", tmp / "shop.toml"}, env);
  INFO(created.describe());
  REQUIRE(created.exit_code == 0);
  CHECK(manifest_of(srv, "shop")["domains"] == json({"shop.example.com", "www.shop.example.com"}));
  auto show = run_cli({"projects", "show", "shop"}, env);
  INFO(show.describe());
  CHECK(show.exit_code == 0);
  CHECK_THAT(show.out, Catch::Contains("domains     shop.example.com, www.shop.example.com"));
  // Another project naming one: the server's 409, exit 1, the owner named on stderr.
  write_file(tmp / "blog.toml", "name = \"blog\"\ndomains = [\"www.shop.example.com\"]\n"
                                "[source]\npath = \"" + tmp / "src" + "\"\n");
  auto clash = run_cli({"projects", "create", "-f", tmp / "blog.toml"}, env);
  INFO(clash.describe());
  CHECK(clash.exit_code == 1);
  CHECK_THAT(clash.err, Catch::Contains("project 'shop'"));
}

TEST_CASE("domains: in proxy mode the production route carries the manifest's domains and follows an update",
          "[integration][domains][proxy]") {
  if (caddy_binary().empty()) {
    WARN("caddy is not installed: proxy mode test skipped");
    return;
  }
  proxy_site e(json::array({"shop.example.com"}));
  json route;
  CHECK(eventually(
      [&] {
        route = route_in_log(e.srv->data_dir(), "site");
        return route.is_object() && route.value("domains", json()) == json({"shop.example.com"});
      },
      5s));
  INFO("route: " << route.dump());
  auto upstream = route.value("upstream_port", 0);
  CHECK(upstream != 0);

  // An update that changes the domains re-sends the route to the same release.
  e.set_domains({"shop.example.org", "www.shop.example.org"});
  CHECK(eventually(
      [&] {
        route = route_in_log(e.srv->data_dir(), "site");
        return route.is_object() && route.value("domains", json()) == json({"shop.example.org", "www.shop.example.org"});
      },
      10s));
  INFO("route: " << route.dump() << "\n" << e.srv->log());
  CHECK(route.value("upstream_port", 0) == upstream);
  CHECK(fetch(e.stable).body == "release 1\n");

  // The next deploy keeps them.
  set_site(e.src, "VERSION", "2");
  auto r = e.srv->api().post("/api/projects/site/deployments", std::string{});
  REQUIRE(r.status == 202);
  auto d = wait_done(e.srv->api(), r.body.at("id").get<std::string>(), 60s);
  REQUIRE(d.value("status", "") == "completed");
  route = route_in_log(e.srv->data_dir(), "site");
  INFO("route after the deploy: " << route.dump());
  CHECK(route.value("upstream_port", 0) != upstream);
  CHECK(route.value("domains", json()) == json({"shop.example.org", "www.shop.example.org"}));

  // production/stop takes the route away (a domain change meanwhile does not bring it back);
  // production/start routes the release again, with the domains of the manifest.
  auto stopped = e.srv->api().post("/api/projects/site/production/stop", std::string{});
  INFO(stopped.describe());
  REQUIRE(stopped.status == 200);
  CHECK(route_in_log(e.srv->data_dir(), "site").is_null());
  e.set_domains({"shop.example.net"});
  auto started = e.srv->api().post("/api/projects/site/production/start", std::string{});
  INFO(started.describe());
  REQUIRE(started.status == 200);
  CHECK(eventually(
      [&] {
        route = route_in_log(e.srv->data_dir(), "site");
        return route.is_object() && route.value("upstream_port", 0) != 0 &&
               route.value("domains", json()) == json({"shop.example.net"});
      },
      10s));
  INFO("route after start: " << route.dump());
  CHECK(eventually([&] { return fetch(e.stable).body == "release 2\n"; }, 5s));
}

// The router matches proxy_route.domains like the host (HAProxy: hosts.map).
TEST_CASE("domains: in proxy mode a request with Host set to a custom domain reaches the project",
          "[integration][domains][proxy]") {
  if (caddy_binary().empty()) {
    WARN("caddy is not installed: proxy mode test skipped");
    return;
  }
  proxy_site e(json::array({"shop.example.com"}));
  fetch_result answer;
  CHECK(eventually(
      [&] {
        answer = fetch(e.http_port, "/", 1500ms, "site.localhost");
        return answer.body == "release 1\n";
      },
      5s));
  INFO("site.localhost: " << answer.describe());
  bool reached = eventually(
      [&] {
        answer = fetch(e.http_port, "/", 1500ms, "shop.example.com");
        return answer.body == "release 1\n";
      },
      5s);
  INFO("shop.example.com: " << answer.describe());
  REQUIRE(reached);
  // A manifest update moves the site to its new domain; the old one answers no more.
  e.set_domains({"shop.example.org"});
  CHECK(eventually([&] { return fetch(e.http_port, "/", 1500ms, "shop.example.org").body == "release 1\n"; }, 10s));
  CHECK(eventually([&] { return fetch(e.http_port, "/", 1500ms, "shop.example.com").status == 404; }, 10s));
  // Deleted: its domain no longer answers.
  REQUIRE(e.srv->api().del("/api/projects/site").status == 200);
  CHECK(eventually([&] { return fetch(e.http_port, "/", 1500ms, "shop.example.org").status == 404; }, 10s));
}
