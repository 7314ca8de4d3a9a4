// runtime/proxy/haproxy: the maps and config a layout implies, and what a layout may hold.
// Pure: no HAProxy runs here (tests/integration/test_haproxy_admin.cpp runs a real one).
#include <catch2/catch.hpp>

#include "tests/unit/support.hpp"

#include <string>

#include "runtime/proxy/haproxy.hpp"

using namespace berth;
using berth::test::temp_dir;

namespace {

proxy_route route(std::string id, std::string host, uint16_t listen, uint16_t upstream,
                  std::vector<std::string> domains = {}) {
  proxy_route r;
  r.id = std::move(id);
  r.project = r.id.substr(0, r.id.find('-'));
  r.host = std::move(host);
  r.listen_port = listen;
  r.upstream_port = upstream;
  r.domains = std::move(domains);
  return r;
}

router_layout sample_layout() {
  router_layout l;
  l.dir = "/var/lib/berth/proxy";
  l.http_port = 8080;
  l.ask_port = 8081;
  l.routes = {route("shop-production", "shop.example.test", 8100, 4001, {"Shop.Example.com", "www.shop.example.com"}),
              route("shop-preview", "shop-preview.example.test", 0, 4002),
              route("blog-production", "blog.example.test", 8200, 0)};  // nothing serves yet
  return l;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("haproxy: the maps of a layout hold every routed port and host, lowercase, none without an upstream",
          "[haproxy]") {
  auto l = sample_layout();
  CHECK(ports_map_of(l) == route_map{{"8100", 4001}});
  CHECK(hosts_map_of(l) == route_map{{"shop.example.test", 4001},
                                     {"shop.example.com", 4001},
                                     {"www.shop.example.com", 4001},
                                     {"shop-preview.example.test", 4002}});
  CHECK(listen_ports_of(l) == std::vector<uint16_t>{8080, 8081, 8100, 8200});
  l.http_port = 0;
  l.ask_port = 0;
  CHECK(listen_ports_of(l) == std::vector<uint16_t>{8100, 8200});
}

TEST_CASE("haproxy: the config binds the stable ports and routes only through the maps", "[haproxy]") {
  auto l = sample_layout();
  auto cfg = haproxy_config(l);
  INFO(cfg);
  // Globals for master-worker reloads that take the listeners over.
  CHECK(has(cfg, "master-worker"));
  CHECK(has(cfg, "stats socket /var/lib/berth/proxy/admin.sock mode 600 level admin expose-fd listeners"));
  CHECK(has(cfg, "log stderr format raw local0 err"));
  // Defaults that keep clients' connections whole.
  for (const char* line : {"mode http", "option idle-close-on-response", "option forwardfor", "http-reuse never",
                           "retry-on conn-failure empty-response", "disable-l7-retry unless METH_GET or METH_HEAD or METH_OPTIONS", "timeout connect 2s", "timeout tunnel 1h",
                           "timeout http-keep-alive"})
    CHECK(has(cfg, line));
  // A POST is never sent twice: only connect failures are retried for it.
  CHECK(cfg.find("disable-l7-retry") < cfg.find("set-dst-port"));
  // Binds: the shared listener on listen_host, stable ports (even one with no upstream yet) on
  // loopback, the ask frontend on loopback.
  CHECK(has(cfg, "bind 127.0.0.1:8080\n"));
  CHECK(has(cfg, "bind 127.0.0.1:8100\n"));
  CHECK(has(cfg, "bind 127.0.0.1:8200\n"));
  CHECK(has(cfg, "frontend ask\n    bind 127.0.0.1:8081\n"));
  // Nothing per project but binds: no host, domain or upstream port appears.
  for (const char* absent : {"shop.example", "4001", "4002", "shop-production"}) CHECK_FALSE(has(cfg, absent));
  CHECK(has(cfg, "map(/var/lib/berth/proxy/ports.map)"));
  CHECK(has(cfg, "map(/var/lib/berth/proxy/hosts.map)"));
  CHECK(has(cfg, "server s 0.0.0.0:0"));
  CHECK(has(cfg, R"({"error":{"code":"not_found","message":"no such site"}})"));
  CHECK(has(cfg, R"("code":"unavailable")"));

  l.listen_host = "0.0.0.0";
  CHECK(has(haproxy_config(l), "bind 0.0.0.0:8080\n"));
  CHECK(has(haproxy_config(l), "bind 127.0.0.1:8100\n"));  // stable ports stay on loopback

  // No listener at all: no "sites" frontend, but both maps are still loaded (set map finds them).
  router_layout empty;
  empty.dir = "/d";
  auto bare = haproxy_config(empty);
  CHECK_FALSE(has(bare, "frontend"));
  CHECK(has(bare, "map(/d/ports.map)"));
  CHECK(has(bare, "map(/d/hosts.map)"));
  CHECK(has(bare, "map(/d/canary.map)"));
}

TEST_CASE("haproxy: splits are canary.map entries keyed by upstream port and the config never changes with them",
          "[haproxy]") {
  auto l = sample_layout();
  auto plain = haproxy_config(l);
  CHECK(canary_map_of(l).empty());
  l.routes[0].split = {4005, 10, true};
  l.routes[1].split = {4006, 50, false};
  CHECK(canary_map_of(l) == split_map{{"4001", "4005:10:1"}, {"4002", "4006:50:0"}});
  CHECK(haproxy_config(l) == plain);  // a split is a map change, never a reload
  auto maps = maps_of(l);
  CHECK(maps.ports == ports_map_of(l));
  CHECK(maps.hosts == hosts_map_of(l));
  CHECK(maps.canaries == canary_map_of(l));
  CHECK(split_value({41008, 100, false}) == "41008:100:0");

  // No split: port 0, percent 0, or a route with no upstream to split.
  l.routes[0].split = {4005, 0, true};
  l.routes[1].split = {0, 50, false};
  l.routes[2].split = {4007, 20, false};  // blog has no upstream yet
  CHECK(canary_map_of(l).empty());

  // The request log and the split rules, in the sites frontend only.
  INFO(plain);
  for (const char* line :
       {"    no log\n", "    log /var/lib/berth/proxy/traffic.sock format raw local0 info\n",
        "    log-format \"%[var(txn.up)] %ST %Tr %Ta %ts\"\n", "set-log-level silent unless split",
        "var(txn.up),map(/var/lib/berth/proxy/canary.map)", "rand(100),sub(txn.percent) lt 0",
        "req.cook(berth_canary),strcmp(txn.candidate_cookie) eq 0",
        "Set-Cookie \"berth_canary=%[var(txn.side)]-%[var(txn.candidate)]; Path=/; HttpOnly; SameSite=Lax\"",
        "http-after-response set-header Connection close if split !{ status 101 }"})
    CHECK(has(plain, line));
  // Requests without a route are silenced before they are answered 404/503.
  CHECK(plain.find("set-log-level silent") < plain.find("http-request return status 404"));
  CHECK(plain.find("set-var(txn.up) var(txn.candidate)") < plain.find("default_backend upstream"));
}

TEST_CASE("haproxy: check_router_layout refuses splits that make no sense", "[haproxy]") {
  auto l = sample_layout();
  l.routes[0].domains = {"shop.example.com"};
  l.routes[0].split = {4005, 100, true};
  CHECK(check_router_layout(l));
  auto refused = [](router_layout bad, const char* why) {
    INFO(why);
    CHECK(check_router_layout(bad).which() == status::code::invalid_argument);
  };
  auto bad = l;
  bad.routes[0].split = {4005, 101, false};
  refused(bad, "over 100 %");
  bad.routes[0].split = {4001, 10, false};
  refused(bad, "to its own upstream");
  bad = l;
  bad.routes[1].upstream_port = 4001;  // preview and production on one upstream, split apart
  bad.routes[1].split = {4006, 10, false};
  refused(bad, "two splits of one upstream");
  bad.routes[1].split = l.routes[0].split;
  CHECK(check_router_layout(bad));  // the same split twice is one map entry
}

TEST_CASE("haproxy: check_router_layout accepts a sound layout and rejects duplicates, bad names, long paths",
          "[haproxy]") {
  auto good = sample_layout();
  // Domains are stored lowercase by the manifest; the check wants them so.
  good.routes[0].domains = {"shop.example.com", "www.shop.example.com"};
  REQUIRE(check_router_layout(good));

  auto rejects = [](router_layout l, const char* why) {
    INFO(why);
    auto st = check_router_layout(l);
    CHECK_FALSE(st);
    CHECK(st.which() == status::code::invalid_argument);
  };
  {
    auto l = good;
    l.routes.push_back(route("shop-production", "other.example.test", 0, 1));
    rejects(l, "duplicate id");
  }
  {
    auto l = good;
    l.routes.push_back(route("x-production", "shop.example.test", 0, 1));
    rejects(l, "a host used twice");
  }
  {
    auto l = good;
    l.routes.push_back(route("x-production", "x.example.test", 0, 1, {"www.shop.example.com"}));
    rejects(l, "a domain that is another route's domain");
  }
  {
    auto l = good;
    l.routes.push_back(route("x-production", "", 8100, 1));
    rejects(l, "a listen port used twice");
  }
  {
    auto l = good;
    l.routes.push_back(route("x-production", "", 8080, 1));
    rejects(l, "a listen port that is the http port");
  }
  {
    auto l = good;
    l.ask_port = l.http_port;
    rejects(l, "ask port = http port");
  }
  for (const char* host : {"Shop.example.test", "shop example.test", "-shop.test", "shop..test", "shop.test;x",
                           "shop.test\nbind :80", "*.example.test", "shop.test:80"}) {
    auto l = good;
    l.routes.push_back(route("x-production", host, 0, 1));
    rejects(l, host);
  }
  for (const char* id : {"", "a b", "a;b", "a\nb"}) {
    auto l = good;
    l.routes.push_back(route(id, "", 0, 1));
    rejects(l, "bad id");
  }
  {
    auto l = good;
    l.dir = "relative/proxy";
    rejects(l, "relative dir");
  }
  {
    auto l = good;
    l.dir = "/srv/my proxy";
    rejects(l, "a space in the dir");
  }
  {
    auto l = good;
    l.dir = "/" + std::string(100, 'd');  // <dir>/master.sock no longer fits a sockaddr_un
    rejects(l, "long dir");
  }
  {
    auto l = good;
    l.dir = "/" + std::string(94, 'd');  // <dir>/traffic.sock: 95 + 13 = 108 > 107
    rejects(l, "dir just too long");
    l.dir = "/" + std::string(93, 'd');  // exactly 107
    CHECK(check_router_layout(l));
  }
}

TEST_CASE("haproxy: write_router_files writes the config and both maps, replacing earlier ones", "[haproxy]") {
  temp_dir tmp("berth-hap");
  auto l = sample_layout();
  l.dir = tmp.path.string();
  REQUIRE(write_router_files(l));
  CHECK(berth::test::read_file(tmp / "ports.map") == "8100 4001\n");
  CHECK(berth::test::read_file(tmp / "hosts.map") ==
        "shop-preview.example.test 4002\nshop.example.com 4001\nshop.example.test 4001\nwww.shop.example.com 4001\n");
  CHECK(berth::test::read_file(tmp / "haproxy.cfg") == haproxy_config(l));
  CHECK(berth::test::read_file(tmp / "canary.map").empty());
  l.routes[0].split = {4005, 10, true};
  REQUIRE(write_router_files(l));
  CHECK(berth::test::read_file(tmp / "canary.map") == "4001 4005:10:1\n");

  l.routes.clear();
  REQUIRE(write_router_files(l));
  CHECK(berth::test::read_file(tmp / "ports.map").empty());
  CHECK(berth::test::read_file(tmp / "hosts.map").empty());
  // No temp files left behind.
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(tmp.path)) (void)e, ++entries;
  CHECK(entries == 4);

  CHECK(haproxy_command("/usr/sbin/haproxy", "/d") ==
        std::vector<std::string>{"/usr/sbin/haproxy", "-W", "-S", "/d/master.sock,mode,600", "-f", "/d/haproxy.cfg"});
}
