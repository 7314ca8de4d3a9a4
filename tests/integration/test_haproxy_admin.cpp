// runtime/proxy/haproxy against a real HAProxy 2.6 (master-worker) run from a 0700 temp dir
// with haproxy_command, and tiny in-process upstreams: routing by port, host and custom domain,
// the JSON 404/503, route flips through the runtime API with no reload, tunnels kept across
// flips and reloads, map updates reaching old workers, the ask frontend, a refused reload.
// Skipped (WARN) when haproxy is not installed.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/integration/haproxy_support.hpp"

using namespace berth;
using namespace berth::it;
using namespace std::chrono_literals;

TEST_CASE("haproxy admin: routes by stable port, host and custom domain, answers 404/503 in JSON, ask follows hosts.map",
          "[integration][haproxy]") {
  SKIP_WITHOUT_HAPROXY();
  tiny_upstream a("A"), b("B");
  uint16_t shop_port = free_port(), blog_port = free_port();
  router_fixture f({route("shop", "shop.test", shop_port, a.port(), {"shop.example.com"}),
                    route("blog", "blog.test", blog_port, 0)},
                   true);
  // The config HAProxy runs is one it accepts without a warning.
  auto check_log = f.layout.dir + "/check.log";
  int check_rc = run_to_end({haproxy_binary(), "-c", "-f", f.layout.dir + "/haproxy.cfg"}, check_log);
  INFO("haproxy -c: " << read_file(check_log));
  CHECK(check_rc == 0);
  CHECK(read_file(check_log).find("WARNING") == std::string::npos);

  // Both sockets (no password) only for berth's user.
  for (const char* sock : {"/master.sock", "/admin.sock"}) {
    struct stat st {};
    REQUIRE(::stat((f.layout.dir + sock).c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0600);
  }

  CHECK(body_of(get_once(shop_port, "anything")) == "A\n");  // by port, whatever the Host
  CHECK(body_of(get_once(f.layout.http_port, f.host("shop.test"))) == "A\n");
  CHECK(body_of(get_once(f.layout.http_port, "SHOP.Example.com")) == "A\n");  // custom domain, any case

  auto none = get_once(f.layout.http_port, "nope.test");
  CHECK(none.status == 404);
  CHECK(none.header("content-type") == "application/json");
  CHECK(nlohmann::json::parse(none.body)["error"]["code"] == "not_found");
  auto no_upstream = get_once(f.layout.http_port, "blog.test");  // a host whose route has no upstream
  CHECK(no_upstream.status == 404);
  auto not_yet = get_once(blog_port, "blog.test");  // a bound stable port with nothing behind it
  CHECK(not_yet.status == 503);
  CHECK(nlohmann::json::parse(not_yet.body)["error"]["code"] == "unavailable");

  auto ask = [&](const std::string& domain) { return get_once(f.layout.ask_port, "localhost", "/ask?domain=" + domain).status; };
  CHECK(ask("shop.example.com") == 200);
  CHECK(ask("shop.test") == 200);
  CHECK(ask("blog.test") == 404);
  CHECK(ask("nope.test") == 404);

  // blog gets an upstream: its port, host and ask answer follow, with no reload.
  auto before = f.workers();
  f.layout.routes[1].upstream_port = b.port();
  REQUIRE(f.sync());
  CHECK(body_of(get_once(blog_port, "x")) == "B\n");
  CHECK(body_of(get_once(f.layout.http_port, "blog.test")) == "B\n");
  CHECK(ask("blog.test") == 200);
  // shop loses its domain: no more route, no more certificate.
  f.layout.routes[0].domains.clear();
  REQUIRE(f.sync());
  CHECK(get_once(f.layout.http_port, "shop.example.com").status == 404);
  CHECK(ask("shop.example.com") == 404);
  CHECK(f.workers() == before);

  // An upstream that refuses connections: retried, then HAProxy's own 503, in JSON.
  auto dead = maps_of(f.layout);
  dead.ports[std::to_string(blog_port)] = free_port();  // nothing listens there
  REQUIRE(f.admin->sync_maps(dead));
  // HAProxy waits 1 s before each of its 3 retries: ~3 s.
  plain_connection slow(blog_port);
  auto asked = std::chrono::steady_clock::now();
  auto refused = slow.get("x", "/", 10000);
  auto waited = std::chrono::steady_clock::now() - asked;
  CHECK(waited >= 2500ms);
  CHECK(waited < 8s);
  CHECK(refused.status == 503);
  CHECK(refused.header("content-type") == "application/json");
  CHECK(body_of(refused).find("\"code\":\"unavailable\"") != std::string::npos);
  REQUIRE(f.sync());

  // A large change (map updates go in batches of lines): 450 hosts added, then removed.
  auto many = maps_of(f.layout);
  for (int i = 0; i < 450; ++i) many.hosts["site" + std::to_string(i) + ".test"] = i % 2 ? a.port() : b.port();
  REQUIRE(f.admin->sync_maps(many));
  CHECK(body_of(get_once(f.layout.http_port, "site0.test")) == "B\n");
  CHECK(body_of(get_once(f.layout.http_port, "site449.test")) == "A\n");
  CHECK(ask("site300.test") == 200);
  REQUIRE(f.sync());
  CHECK(get_once(f.layout.http_port, "site449.test").status == 404);
  CHECK(body_of(get_once(f.layout.http_port, "blog.test")) == "B\n");

  // A key HAProxy would misread is refused before anything is sent.
  CHECK(f.admin->sync_maps({{}, {{"a b", 1}}, {}}).which() == status::code::invalid_argument);
  CHECK(f.admin->sync_maps({{}, {{"a;show proc", 1}}, {}}).which() == status::code::invalid_argument);
  for (const char* value : {"1:2", "1:20:2", "0:20:1", "1:0:1", "1:101:1", "01:20:1", "1:20:1 x", "1:20:1;show proc"})
    CHECK(f.admin->sync_maps({{}, {}, {{"4000", value}}}).which() == status::code::invalid_argument);
  CHECK(f.admin->sync_maps({{}, {}, {{"shop", "4001:20:1"}}}).which() == status::code::invalid_argument);
}

TEST_CASE("haproxy admin: sync_maps flips kept-alive clients' next requests to the new upstream with no reload",
          "[integration][haproxy]") {
  SKIP_WITHOUT_HAPROXY();
  tiny_upstream a("A"), b("B");
  uint16_t shop_port = free_port();
  router_fixture f({route("shop", "shop.test", shop_port, a.port())});
  auto pids = f.workers();
  REQUIRE(pids.size() == 1);

  // Two kept-alive clients per listener: server connections are pooled and reused between
  // requests, and must never carry a request to the upstream the map no longer names.
  plain_connection by_host(f.layout.http_port), by_host2(f.layout.http_port), by_port(shop_port), by_port2(shop_port);
  for (int round = 0; round < 6; ++round) {
    tiny_upstream& up = round % 2 == 0 ? a : b;
    INFO("round " << round << " expects " << up.name());
    f.layout.routes[0].upstream_port = up.port();
    REQUIRE(f.sync());
    std::string want = up.name() + "\n";
    for (int i = 0; i < 3; ++i) {
      CHECK(body_of(by_host.get(f.host("shop.test"), "/")) == want);
      CHECK(body_of(by_host2.get("shop.test", "/")) == want);
      CHECK(body_of(by_port.get("x", "/")) == want);
      CHECK(body_of(by_port2.get("x", "/")) == want);
      CHECK(body_of(get_once(f.layout.http_port, "shop.test")) == want);
    }
  }
  CHECK(f.workers() == pids);  // no reload
  // HAProxy did reuse upstream connections across the flips (else this proved nothing about
  // reuse): each kept-alive client keeps one per upstream (4 x 2), each fresh client connection
  // opens its own (6 x 3).
  INFO("upstream connections: A " << a.connections() << ", B " << b.connections() << " for 90 requests");
  CHECK(a.connections() + b.connections() <= 4 * 2 + 6 * 3);
}

TEST_CASE("haproxy admin: a tunnel stays open across another route's flip and a reload, and sync_maps reaches the old worker",
          "[integration][haproxy]") {
  SKIP_WITHOUT_HAPROXY();
  tiny_upstream a("A"), b("B"), c("C");
  router_fixture f({route("shop", "shop.test", free_port(), a.port()), route("chat", "chat.test", 0, b.port())});
  auto first = f.workers();
  REQUIRE(first.size() == 1);

  plain_connection tunnel(f.layout.http_port);
  std::string err;
  REQUIRE(tunnel.upgrade("chat.test", &err));
  REQUIRE(tunnel.echo("hello", &err));
  plain_connection kept(f.layout.http_port);  // a kept-alive client opened before the reload
  CHECK(body_of(kept.get("shop.test", "/")) == "A\n");

  // Another route flips: the tunnel is untouched.
  f.layout.routes[0].upstream_port = c.port();
  REQUIRE(f.sync());
  CHECK(body_of(kept.get("shop.test", "/")) == "C\n");
  INFO(err);
  CHECK(tunnel.echo("after flip", &err));

  // A new project's first route adds a listen port: config rewritten, reload.
  uint16_t new_port = free_port();
  f.layout.routes.push_back(route("news", "news.test", new_port, a.port()));
  REQUIRE(write_router_files(f.layout));
  auto reloaded = f.admin->reload(10s);
  INFO(reloaded.message() << "\n" << f.proc->log());
  REQUIRE(reloaded);
  auto after = f.workers();
  REQUIRE(after.size() == 2);  // the new worker first, the old one still holding the tunnel
  CHECK(after[0] != first[0]);
  CHECK(after[1] == first[0]);
  CHECK(body_of(get_once(new_port, "x")) == "A\n");
  CHECK(tunnel.echo("after reload", &err));

  // shop flips again: the old worker gets the new map too, so the connection it still holds
  // is answered by the new upstream (once more, then closed: idle-close-on-response).
  f.layout.routes[0].upstream_port = b.port();
  REQUIRE(f.sync());
  auto last = kept.get("shop.test", "/");
  CHECK(body_of(last) == "B\n");
  CHECK(last.header("connection") == "close");
  CHECK(body_of(get_once(f.layout.http_port, "shop.test")) == "B\n");
  CHECK(tunnel.echo("after the old worker's map changed", &err));
  CHECK_FALSE(tunnel.peer_closed());
}

TEST_CASE("haproxy admin: reloads refuse no new connection and fail no kept-alive request",
          "[integration][haproxy]") {
  SKIP_WITHOUT_HAPROXY();
  tiny_upstream a("A");
  uint16_t shop_port = free_port();
  router_fixture f({route("shop", "shop.test", shop_port, a.port())});
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::mutex mu;
  std::vector<std::string> errors;
  auto fail = [&](const std::string& what) {
    ++failed;
    std::lock_guard<std::mutex> lock(mu);
    if (errors.size() < 10) errors.push_back(what);
  };
  std::thread fresh([&] {  // a new connection per GET, by port and by host in turn
    for (int i = 0; !stop; ++i) {
      auto r = i % 2 ? get_once(shop_port, "x") : get_once(f.layout.http_port, "shop.test");
      r.status == 200 && r.body == "A\n" ? ++ok : (fail("new connection: " + body_of(r)), 0);
    }
  });
  std::thread kept([&] {  // kept-alive; after "Connection: close" a new connection
    auto c = std::make_unique<plain_connection>(f.layout.http_port);
    while (!stop) {
      auto r = c->get("shop.test", "/");
      r.status == 200 && r.body == "A\n" ? ++ok : (fail("kept-alive: " + body_of(r)), 0);
      if (r.status < 0 || r.header("connection") == "close") c = std::make_unique<plain_connection>(f.layout.http_port);
    }
  });
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(100ms);
    f.layout.routes.push_back(route("p" + std::to_string(i), "p" + std::to_string(i) + ".test", free_port(), a.port()));
    REQUIRE(write_router_files(f.layout));
    auto st = f.admin->reload(10s);
    INFO(st.message());
    CHECK(st);
  }
  std::this_thread::sleep_for(100ms);
  stop = true;
  fresh.join();
  kept.join();
  INFO("ok " << ok << ", failed " << failed);
  for (auto& e : errors) INFO(e);
  CHECK(failed == 0);
  CHECK(ok > 100);
}

TEST_CASE("haproxy admin: a reload with a broken config or a busy port fails cleanly and the old worker keeps serving",
          "[integration][haproxy]") {
  SKIP_WITHOUT_HAPROXY();
  tiny_upstream a("A");
  uint16_t shop_port = free_port();
  router_fixture f({route("shop", "shop.test", shop_port, a.port())});
  auto before = f.workers();
  plain_connection kept(shop_port);
  CHECK(body_of(kept.get("x", "/")) == "A\n");

  {
    std::ofstream cfg(f.layout.dir + "/haproxy.cfg", std::ios::app);
    cfg << "    no-such-keyword 1\n";
  }
  auto started = std::chrono::steady_clock::now();
  auto st = f.admin->reload(10s);
  auto took = std::chrono::steady_clock::now() - started;
  CHECK(st.which() == status::code::io_error);
  CHECK(st.message().find("reload failed") != std::string::npos);
  CHECK(took < 5s);  // seen as failed, not waited out
  CHECK(f.workers() == before);
  CHECK(body_of(kept.get("x", "/")) == "A\n");
  CHECK(body_of(get_once(shop_port, "x")) == "A\n");
  CHECK(f.sync());  // the runtime API still works

  // A new listen port another process holds: the master cannot bind it, the reload fails.
  {
    tiny_upstream squatter("squatter");  // listens without SO_REUSEPORT
    auto clash = f.layout;
    clash.routes.push_back(route("news", "news.test", squatter.port(), a.port()));
    REQUIRE(write_router_files(clash));
    auto refused = f.admin->reload(10s);
    INFO(f.proc->log());
    CHECK(refused.which() == status::code::io_error);
    CHECK(refused.message().find("reload failed") != std::string::npos);
    CHECK(f.workers() == before);
    CHECK(body_of(kept.get("x", "/")) == "A\n");
  }

  // Fixed, the next reload succeeds.
  REQUIRE(write_router_files(f.layout));
  auto fixed = f.admin->reload(10s);
  INFO(fixed.message() << "\n" << f.proc->log());
  REQUIRE(fixed);
  CHECK(f.workers().front() != before.front());
  CHECK(body_of(get_once(shop_port, "x")) == "A\n");
}
