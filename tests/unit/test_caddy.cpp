// runtime/caddy: config generation (pure) and the admin client against a real Caddy 2.6.
// The tests that need Caddy are skipped (SUCCEED + WARN) when it is not installed.
#include <catch2/catch.hpp>

#include "tests/unit/support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "runtime/proxy/caddy.hpp"
#include "runtime/net/ports.hpp"
#include "runtime/process/process_driver.hpp"

using namespace berth;
using namespace std::chrono_literals;
using json = nlohmann::json;
using berth::test::temp_dir;
using berth::test::write_file;

// A status that must be ok, with its message when it is not.
#define REQUIRE_OK(expr)               \
  do {                                 \
    auto status_ = (expr);             \
    INFO("status: " << status_.message()); \
    REQUIRE(status_);                  \
  } while (0)

namespace {

using steady = std::chrono::steady_clock;

// /usr/bin/caddy, else `caddy` on PATH; "" when missing.
std::string caddy_binary() {
  if (::access("/usr/bin/caddy", X_OK) == 0) return "/usr/bin/caddy";
  const char* path = std::getenv("PATH");
  if (!path) return "";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::string p = dir + "/caddy";
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

#define SKIP_WITHOUT_CADDY()                                         \
  if (caddy_binary().empty()) {                                      \
    WARN("caddy is not installed (/usr/bin/caddy or PATH): skipped"); \
    SUCCEED();                                                       \
    return;                                                          \
  }

uint16_t free_port() {
  uint16_t p = free_loopback_port();
  REQUIRE(p != 0);
  return p;
}

proxy_route route(std::string id, std::string host, uint16_t listen_port, uint16_t upstream_port) {
  proxy_route r;
  r.id = std::move(id);
  r.project = r.id.substr(0, r.id.find('-'));
  r.host = std::move(host);
  r.listen_port = listen_port;
  r.upstream_port = upstream_port;
  return r;
}

// A tiny upstream: answers `body` to GET of any path; /slow answers after 1.5 s.
struct upstream {
  httplib::Server svr;
  std::thread th;
  uint16_t port = 0;
  // port 0: any free port.
  explicit upstream(std::string body, uint16_t want_port = 0) {
    // Every Caddy config change brings a new upstream connection pool: enough workers so
    // connections kept alive by superseded configs do not queue the new ones (httplib serves
    // a connection per thread), and a short keep-alive so stop() does not wait long for them.
    svr.new_task_queue = [] { return new httplib::ThreadPool(64); };
    svr.set_keep_alive_timeout(1);
    svr.set_tcp_nodelay(true);
    svr.Get("/slow", [body](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(1500ms);
      res.set_content(body, "text/plain");
    });
    svr.Get(".*", [body](const httplib::Request&, httplib::Response& res) {
      res.set_content(body, "text/plain");
    });
    int p = want_port;
    if (want_port == 0)
      p = svr.bind_to_any_port("127.0.0.1");
    else if (!svr.bind_to_port("127.0.0.1", want_port))
      p = 0;
    REQUIRE(p > 0);
    port = static_cast<uint16_t>(p);
    th = std::thread([this] { svr.listen_after_bind(); });
    for (int i = 0; i < 400 && !svr.is_running(); ++i) std::this_thread::sleep_for(5ms);
    REQUIRE(svr.is_running());
  }
  ~upstream() { stop(); }
  void stop() {
    svr.stop();
    if (th.joinable()) th.join();
  }
};

struct reply {
  int status = 0;  // 0: no HTTP answer
  std::string body;
  std::string error;
  bool ok(const std::string& want) const { return status == 200 && body == want; }
};

reply http_get(httplib::Client& cli, const std::string& host, const std::string& path = "/") {
  httplib::Headers h;
  if (!host.empty()) h.emplace("Host", host);
  reply r;
  auto res = cli.Get(path.c_str(), h);
  if (!res) {
    r.error = httplib::to_string(res.error());
    return r;
  }
  r.status = res->status;
  r.body = res->body;
  return r;
}

reply http_get(uint16_t port, const std::string& host = "", const std::string& path = "/") {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(2s);
  cli.set_read_timeout(10s);
  cli.set_keep_alive(false);
  cli.set_tcp_nodelay(true);
  return http_get(cli, host, path);
}

// After an admin change returns, a superseded server instance of Caddy may still accept a
// connection for a few ms (measured: 1 in ~1000 changes, < 10 ms): checks of the new state
// poll for up to 1 s. `want` "" with status 0 = connection refused.
reply eventually(uint16_t port, const std::string& host, int want_status, const std::string& want_body) {
  auto deadline = steady::now() + 1s;
  for (;;) {
    reply r = http_get(port, host);
    bool match = r.status == want_status && (want_status == 0 || r.body == want_body);
    if (match || steady::now() >= deadline) return r;
    std::this_thread::sleep_for(10ms);
  }
}
bool serves(uint16_t port, const std::string& host, const std::string& body) {
  reply r = eventually(port, host, 200, body);
  return r.ok(body);
}
bool refuses(uint16_t port) { return eventually(port, "", 0, "").status == 0; }
bool no_such_site(uint16_t port, const std::string& host) {
  return eventually(port, host, 404, "no such site\n").status == 404;
}

// Keeps one real `caddy run` alive for a test; stops it (and its process group) whatever
// happens, REQUIRE failures included.
struct caddy_process {
  process_driver driver;
  process_handle handle;
  bool started = false;
  ~caddy_process() { stop(); }
  void stop() {
    if (started) driver.stop(handle, 3000ms);
    started = false;
  }
};

struct caddy_fixture {
  temp_dir tmp{"berth-caddy"};
  upstream a{"A"}, b{"B"};
  proxy_layout layout;
  caddy_process caddy;  // declared last: stopped first

  // Project "shop": host shop.localhost and a dedicated port, both to upstream A.
  caddy_fixture() {
    layout.admin_socket = tmp / "admin.sock";
    layout.http_port = free_port();
    layout.routes.push_back(route("shop-production", "shop.localhost", free_port(), a.port));
    REQUIRE(check_layout(layout));
    start(caddy_config(layout));
  }

  void start(const json& config) {
    write_file(tmp / "caddy.json", config.dump(2));
    process_spec spec;
    spec.argv = {caddy_binary(), "run", "--config", tmp / "caddy.json"};
    spec.cwd = tmp.path.string();
    spec.env = {{"HOME", tmp.path.string()},
                {"XDG_DATA_HOME", tmp / "data"},
                {"XDG_CONFIG_HOME", tmp / "config"}};
    spec.stdout_path = spec.stderr_path = tmp / "caddy.log";
    status s = caddy.driver.start(spec, &caddy.handle);
    INFO(s.message());
    REQUIRE(s);
    caddy.started = true;
    // Ready, or given up as soon as Caddy has exited (a config it refuses).
    auto deadline = steady::now() + 10s;
    do {
      s = wait_admin_ready(layout.admin_socket, 100ms);
    } while (!s && caddy.driver.inspect(caddy.handle).status == process_status::running &&
             steady::now() < deadline);
    INFO(s.message() << "\ncaddy log:\n" << log());
    REQUIRE(s);
  }

  std::string log() const { return berth::test::read_file(tmp / "caddy.log"); }
  caddy_admin admin() const { return caddy_admin(layout.admin_socket); }
  uint16_t http() const { return layout.http_port; }
  uint16_t shop_port() const { return layout.routes[0].listen_port; }
};

// Holds 127.0.0.1:<port> listening (no SO_REUSEPORT) until destroyed.
struct port_squatter {
  int fd = -1;
  uint16_t port = 0;
  port_squatter() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  ~port_squatter() { ::close(fd); }
};

// net.ipv4.tcp_migrate_req of this network namespace (Linux >= 5.14; false when absent).
bool tcp_migrate_req() {
  return berth::test::read_file("/proc/sys/net/ipv4/tcp_migrate_req").substr(0, 1) == "1";
}

long ms_since(steady::time_point t0) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count());
}

}  // namespace

// ---- pure config ----------------------------------------------------------------------------

TEST_CASE("caddy_config builds the hosts server and one server per dedicated port", "[caddy]") {
  proxy_layout l;
  l.admin_socket = "/srv/berth/proxy/admin/caddy.sock";
  l.http_port = 8080;
  l.routes = {
      route("shop-production", "shop.localhost", 8123, 4001),
      route("shop-preview", "shop-preview.localhost", 0, 4002),
      route("blog-production", "", 8456, 4003),
      route("idle-production", "idle.localhost", 8789, 0),  // nothing serving yet: left out
  };
  REQUIRE(check_layout(l));
  json c = caddy_config(l);

  // The admin API only on the unix socket (no TCP port), with the Host the client sends.
  CHECK(c["admin"]["listen"] == "unix//srv/berth/proxy/admin/caddy.sock");
  CHECK(c["admin"]["origins"] == json::array({"localhost"}));
  CHECK(c["logging"]["logs"]["default"]["level"] == "WARN");
  const json& servers = c["apps"]["http"]["servers"];
  REQUIRE(servers.size() == 3);
  REQUIRE(servers.contains("hosts"));
  REQUIRE(servers.contains("port-shop-production"));
  REQUIRE(servers.contains("port-blog-production"));
  CHECK_FALSE(servers.contains("port-idle-production"));
  for (const auto& [name, srv] : servers.items()) {
    INFO(name);
    CHECK(srv["automatic_https"]["disable"] == true);
  }

  const json& hosts = servers["hosts"];
  CHECK(hosts["listen"] == json::array({"127.0.0.1:8080"}));
  const json& routes = hosts["routes"];
  REQUIRE(routes.size() == 3);
  CHECK(routes[0]["@id"] == "shop-production-host");
  CHECK(routes[0]["match"] == json::parse(R"([{"host":["shop.localhost"]}])"));
  CHECK(routes[0]["terminal"] == true);
  const json& rp = routes[0]["handle"][0];
  CHECK(rp["handler"] == "reverse_proxy");
  CHECK(rp["upstreams"] == json::parse(R"([{"dial":"127.0.0.1:4001"}])"));
  CHECK(rp["load_balancing"]["try_duration"] == "5s");
  CHECK(rp["load_balancing"]["try_interval"] == "50ms");
  CHECK(routes[1]["@id"] == "shop-preview-host");
  CHECK(routes[1]["handle"][0]["upstreams"][0]["dial"] == "127.0.0.1:4002");
  // The unmatched-host route: last, no @id, explicit 404.
  CHECK_FALSE(routes[2].contains("@id"));
  CHECK_FALSE(routes[2].contains("match"));
  CHECK(routes[2]["handle"][0]["handler"] == "static_response");
  CHECK(routes[2]["handle"][0]["status_code"] == 404);

  const json& shop = servers["port-shop-production"];
  CHECK(shop["listen"] == json::array({"127.0.0.1:8123"}));
  REQUIRE(shop["routes"].size() == 1);
  CHECK(shop["routes"][0]["@id"] == "shop-production-port");
  CHECK_FALSE(shop["routes"][0].contains("match"));
  CHECK(shop["routes"][0]["handle"][0]["upstreams"][0]["dial"] == "127.0.0.1:4001");
  CHECK(servers["port-blog-production"]["routes"][0]["handle"][0]["upstreams"][0]["dial"] ==
        "127.0.0.1:4003");

  // The incremental helpers produce exactly the same objects.
  CHECK(routes[0] == host_route_json(l.routes[0]));
  CHECK(shop == port_server_json(l.routes[0], l.listen_host));
  CHECK(hosts == hosts_server_json(l));
  CHECK(rp["upstreams"] == caddy_upstreams_json(4001));
}

TEST_CASE("caddy_config without an http port has no hosts server", "[caddy]") {
  proxy_layout l;
  l.listen_host = "0.0.0.0";
  l.admin_socket = "/srv/berth/proxy/admin/caddy.sock";
  l.routes = {route("shop-production", "shop.localhost", 8123, 4001)};
  json servers = caddy_config(l)["apps"]["http"]["servers"];
  REQUIRE(servers.size() == 1);
  CHECK(servers["port-shop-production"]["listen"] == json::array({"0.0.0.0:8123"}));
  l.routes.clear();
  CHECK(caddy_config(l)["apps"]["http"]["servers"] == json::object());
}

TEST_CASE("check_layout rejects port clashes and bad ids", "[caddy]") {
  proxy_layout l;
  l.admin_socket = "/srv/berth/proxy/admin/caddy.sock";
  l.http_port = 8080;
  l.routes = {route("shop-production", "shop.localhost", 8123, 4001)};
  CHECK(check_layout(l));

  auto bad = [](proxy_layout x) {
    status s = check_layout(x);
    INFO(s.message());
    return s.which() == status::code::invalid_argument;
  };
  { auto x = l; x.admin_socket = ""; CHECK(bad(x)); }
  { auto x = l; x.admin_socket = "relative/caddy.sock"; CHECK(bad(x)); }
  { auto x = l; x.admin_socket = "/" + std::string(max_admin_socket_path(), 'a'); CHECK(bad(x)); }
  { auto x = l; x.routes[0].listen_port = 8080; CHECK(bad(x)); }
  { auto x = l; x.routes.push_back(route("blog-production", "", 8123, 4002)); CHECK(bad(x)); }
  { auto x = l; x.routes.push_back(route("blog-production", "shop.localhost", 0, 4002)); CHECK(bad(x)); }
  { auto x = l; x.routes.push_back(route("shop-production", "", 0, 4002)); CHECK(bad(x)); }
  { auto x = l; x.routes[0].id = "shop/production"; CHECK(bad(x)); }
  { auto x = l; x.routes[0].id = ""; CHECK(bad(x)); }
  // A route not serving yet takes no port.
  { auto x = l; x.routes.push_back(route("blog-production", "", 8123, 0)); CHECK(check_layout(x)); }
}

TEST_CASE("wait_admin_ready gives up when nothing answers", "[caddy]") {
  temp_dir tmp{"berth-caddy"};
  std::string sock = tmp / "nobody.sock";
  auto t0 = steady::now();
  status s = wait_admin_ready(sock, 150ms);
  long ms = ms_since(t0);
  INFO(s.message());
  CHECK(s.which() == status::code::io_error);
  CHECK(ms >= 150);
  CHECK(ms < 2000);
  CHECK(caddy_admin(sock).ping().which() == status::code::io_error);
  // Errors never name the socket's path (they reach /health through the breaker).
  CHECK(s.message().find(sock) == std::string::npos);
  CHECK(caddy_admin(sock).ping().message().find(tmp.path.string()) == std::string::npos);
}

// ---- real Caddy -----------------------------------------------------------------------------

TEST_CASE("caddy proxies host and port routes and switches upstreams without failed requests",
          "[caddy]") {
  SKIP_WITHOUT_CADDY();
  caddy_fixture fx;
  caddy_admin admin = fx.admin();

  CHECK(http_get(fx.http(), "shop.localhost").ok("A"));
  CHECK(http_get(fx.shop_port()).ok("A"));
  reply unknown = http_get(fx.http(), "nope.localhost");
  CHECK(unknown.status == 404);
  CHECK(unknown.body == "no such site\n");

  // Two clients request both routes in turn while the upstreams are switched: one opens a
  // new connection per request, the other keeps its connections alive and, like browsers
  // and Go's http.Transport for idempotent requests (RFC 9112 9.3.1), retries once on a new
  // connection when a kept-alive connection is closed under it without an answer.
  struct counts {
    std::atomic<int> done{0}, wrong{0}, dropped{0}, retried{0}, saw_b{0};
    std::string failures;  // "<ms> <route>: <what>" lines
  };
  counts fresh, kept;
  const auto t0 = steady::now();
  std::atomic<bool> finished{false};
  constexpr int kMax = 2000;  // per client, a bound only
  auto client = [&](counts& c, bool keep_alive) {
    auto make = [&](uint16_t port) {
      auto cli = std::make_unique<httplib::Client>("127.0.0.1", port);
      cli->set_connection_timeout(2s);
      cli->set_read_timeout(10s);
      cli->set_keep_alive(keep_alive);
      cli->set_tcp_nodelay(true);
      return cli;
    };
    auto host_cli = make(fx.http());
    auto port_cli = make(fx.shop_port());
    for (int i = 0; i < kMax && !finished; ++i) {
      bool by_host = i % 2 == 0;
      reply r = by_host ? http_get(*host_cli, "shop.localhost") : http_get(*port_cli, "");
      if (r.status == 0 && keep_alive) {
        ++c.retried;
        r = by_host ? http_get(fx.http(), "shop.localhost") : http_get(fx.shop_port());
      }
      if (r.ok("B")) {
        ++c.saw_b;
      } else if (!r.ok("A")) {
        ++(r.status == 0 ? c.dropped : c.wrong);
        if (c.dropped + c.wrong <= 20)
          c.failures += std::to_string(ms_since(t0)) + " ms " + (by_host ? "host" : "port") + ": status " +
                        std::to_string(r.status) + " body '" + r.body + "' " + r.error + "\n";
      }
      ++c.done;
    }
  };
  std::thread t1(client, std::ref(fresh), false);
  std::thread t2(client, std::ref(kept), true);
  struct joiner {
    std::thread& a;
    std::thread& b;
    std::atomic<bool>& stop;
    ~joiner() {
      stop = true;
      if (a.joinable()) a.join();
      if (b.joinable()) b.join();
    }
  } join_guard{t1, t2, finished};

  // Flip both routes A/B eleven times (ending on B) while the clients run. Then drain
  // (requests routed by a superseded config may still dial A for a moment), stop A, and
  // keep requesting: nothing may reach A any more.
  std::string timeline;
  auto wait_done = [&](int n) {
    for (int i = 0; i < 2000 && (fresh.done < n || kept.done < n); ++i) std::this_thread::sleep_for(2ms);
  };
  wait_done(30);
  status s1, s2;
  for (int i = 0; i <= 10 && s1 && s2; ++i) {
    uint16_t to = i % 2 == 0 ? fx.b.port : fx.a.port;
    timeline += std::to_string(ms_since(t0)) + " ms switch to " + (i % 2 == 0 ? "B" : "A") + "\n";
    s1 = admin.set_upstream("shop-production-host", to);
    s2 = admin.set_upstream("shop-production-port", to);
    std::this_thread::sleep_for(10ms);
  }
  std::this_thread::sleep_for(200ms);
  timeline += std::to_string(ms_since(t0)) + " ms stopping A\n";
  fx.a.stop();
  timeline += std::to_string(ms_since(t0)) + " ms A stopped\n";
  int after = std::min<int>(fresh.done, kept.done);
  wait_done(after + 50);
  finished = true;
  t1.join();
  t2.join();

  INFO(s1.message() << " / " << s2.message());
  REQUIRE(s1);
  REQUIRE(s2);
  INFO("timeline:\n" << timeline);
  INFO("new connection per request: " << fresh.done << " requests, " << fresh.wrong << " wrong answers, "
       << fresh.dropped << " without an answer:\n" << fresh.failures);
  INFO("keep-alive: " << kept.done << " requests (" << kept.retried << " retried on a new connection), "
       << kept.wrong << " wrong answers, " << kept.dropped << " without an answer:\n" << kept.failures);
  INFO("caddy log:\n" << fx.log());
  // Every answer is A or B: no 502 (a dial that raced the switch is retried by Caddy), no 404.
  CHECK(fresh.wrong == 0);
  CHECK(kept.wrong == 0);
  CHECK(fresh.saw_b > 0);
  CHECK(kept.saw_b > 0);
  // Connections without any answer: every admin change rebinds Caddy's listeners (a new
  // SO_REUSEPORT socket, the old one closed), and a connection still in the old socket's
  // accept queue is reset, unless the kernel migrates it to the new socket
  // (net.ipv4.tcp_migrate_req = 1, Linux >= 5.14). With it, none may be lost.
  if (tcp_migrate_req()) {
    CHECK(fresh.dropped == 0);
    CHECK(kept.dropped == 0);
  } else if (fresh.dropped + kept.dropped > 0) {
    WARN(fresh.dropped + kept.dropped << " of " << fresh.done + kept.done << " requests got no answer "
         "(connection reset) during 22 Caddy config reloads: net.ipv4.tcp_migrate_req is 0");
  }
  WARN("switch under load: new-connection client " << fresh.done << " requests / " << fresh.wrong
       << " wrong / " << fresh.dropped << " reset; keep-alive client " << kept.done << " requests / "
       << kept.wrong << " wrong / " << kept.dropped << " dropped / " << kept.retried << " retried");

  CHECK(serves(fx.http(), "shop.localhost", "B"));
  CHECK(serves(fx.shop_port(), "", "B"));
  CHECK(no_such_site(fx.http(), "nope.localhost"));

  // The live config holds the new upstream under the same ids.
  json cfg;
  REQUIRE_OK(admin.config(&cfg));
  CHECK(cfg["apps"]["http"]["servers"]["hosts"]["routes"][0]["handle"][0]["upstreams"] ==
        caddy_upstreams_json(fx.b.port));

  // Latency of one upstream switch (each one is a full config reload inside Caddy).
  std::vector<long> us;
  for (int i = 0; i < 20; ++i) {
    auto t = steady::now();
    status s = admin.set_upstream("shop-production-host", i % 2 == 0 ? fx.a.port : fx.b.port);
    us.push_back(static_cast<long>(
        std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t).count()));
    INFO("call " << i << ": " << s.message());
    REQUIRE(s);
  }
  std::sort(us.begin(), us.end());
  WARN("caddy set_upstream latency over 20 calls: median " << us[10] / 1000.0 << " ms, min "
       << us.front() / 1000.0 << " ms, max " << us.back() / 1000.0 << " ms");
  CHECK(us[10] < 1000 * 1000);
}

TEST_CASE("caddy retries a failed dial until the new upstream answers", "[caddy]") {
  SKIP_WITHOUT_CADDY();
  caddy_fixture fx;
  caddy_admin admin = fx.admin();

  // The route points at a port nobody listens on yet; the upstream comes up 300 ms later
  // and the request that was waiting meanwhile is answered (load_balancing.try_duration).
  uint16_t late_port = free_port();
  REQUIRE_OK(admin.set_upstream("shop-production-port", late_port));
  std::this_thread::sleep_for(50ms);  // the superseded server instance is gone
  reply r;
  long ms = 0;
  auto t0 = steady::now();
  std::thread t([&] {
    r = http_get(fx.shop_port());
    ms = ms_since(t0);
  });
  struct joiner {
    std::thread& t;
    ~joiner() { if (t.joinable()) t.join(); }
  } join_guard{t};
  std::this_thread::sleep_for(300ms);
  {
    upstream late("C", late_port);
    t.join();
  }
  INFO(r.status << " " << r.body << " " << r.error);
  CHECK(r.ok("C"));
  CHECK(ms >= 250);
  CHECK(ms < 4000);
}

TEST_CASE("caddy set_upstream does not wait for slow in-flight requests", "[caddy]") {
  SKIP_WITHOUT_CADDY();
  caddy_fixture fx;
  caddy_admin admin = fx.admin();

  // A request that takes 1.5 s is in flight on A while the route moves to B: the switch
  // returns at once and the slow request still completes on A.
  reply slow;
  std::thread t([&] { slow = http_get(fx.shop_port(), "", "/slow"); });
  std::this_thread::sleep_for(300ms);
  auto t0 = steady::now();
  status s = admin.set_upstream("shop-production-port", fx.b.port);
  long switch_ms = ms_since(t0);
  CHECK(serves(fx.shop_port(), "", "B"));
  t.join();
  INFO(s.message());
  REQUIRE(s);
  CHECK(slow.ok("A"));
  WARN("set_upstream with a 1.5 s request in flight took " << switch_ms << " ms");
  CHECK(switch_ms < 1000);
}

TEST_CASE("caddy admin adds and removes servers and host routes and load restores", "[caddy]") {
  SKIP_WITHOUT_CADDY();
  caddy_fixture fx;
  caddy_admin admin = fx.admin();
  json initial;
  REQUIRE_OK(admin.config(&initial));

  // A second project gets its own port server.
  proxy_route blog = route("blog-production", "blog.localhost", free_port(), fx.b.port);
  status s = admin.put_server(caddy_port_server_name(blog.id), port_server_json(blog, "127.0.0.1"));
  INFO(s.message());
  REQUIRE(s);
  CHECK(serves(blog.listen_port, "", "B"));
  CHECK(serves(fx.shop_port(), "", "A"));

  // put_server on an existing name replaces it (same listener, other upstream).
  blog.upstream_port = fx.a.port;
  REQUIRE_OK(admin.put_server(caddy_port_server_name(blog.id), port_server_json(blog, "127.0.0.1")));
  CHECK(serves(blog.listen_port, "", "A"));

  REQUIRE_OK(admin.delete_server(caddy_port_server_name(blog.id)));
  CHECK(refuses(blog.listen_port));
  CHECK(admin.delete_server(caddy_port_server_name(blog.id)));  // already gone: ok
  CHECK(serves(fx.shop_port(), "", "A"));

  // A host route is added before the final 404 route.
  blog.upstream_port = fx.b.port;
  REQUIRE_OK(admin.add_host_route(host_route_json(blog)));
  CHECK(serves(fx.http(), "blog.localhost", "B"));
  CHECK(serves(fx.http(), "shop.localhost", "A"));
  CHECK(no_such_site(fx.http(), "nope.localhost"));
  // Adding it again replaces it in place: no duplicate @id.
  blog.upstream_port = fx.a.port;
  REQUIRE_OK(admin.add_host_route(host_route_json(blog)));
  CHECK(serves(fx.http(), "blog.localhost", "A"));
  json cfg;
  REQUIRE_OK(admin.config(&cfg));
  const json& routes = cfg["apps"]["http"]["servers"]["hosts"]["routes"];
  REQUIRE(routes.size() == 3);
  CHECK(std::count_if(routes.begin(), routes.end(),
                      [](const json& r) { return r.value("@id", "") == "blog-production-host"; }) == 1);
  CHECK_FALSE(routes.back().contains("@id"));

  REQUIRE_OK(admin.delete_id("blog-production-host"));
  CHECK(no_such_site(fx.http(), "blog.localhost"));
  CHECK(serves(fx.http(), "shop.localhost", "A"));
  CHECK(admin.delete_id("blog-production-host"));  // already gone: ok

  // Drift everything, then load() of the full config restores it.
  REQUIRE_OK(admin.set_upstream("shop-production-host", fx.b.port));
  REQUIRE_OK(admin.delete_server(caddy_port_server_name("shop-production")));
  REQUIRE_OK(admin.add_host_route(host_route_json(blog)));
  CHECK(refuses(fx.shop_port()));
  REQUIRE_OK(admin.load(caddy_config(fx.layout)));
  CHECK(serves(fx.http(), "shop.localhost", "A"));
  CHECK(serves(fx.shop_port(), "", "A"));
  CHECK(no_such_site(fx.http(), "blog.localhost"));
  json restored;
  REQUIRE_OK(admin.config(&restored));
  CHECK(restored == initial);

  // stop(): Caddy exits by itself.
  REQUIRE_OK(admin.stop());
  process_info pi = fx.caddy.driver.wait(fx.caddy.handle, 5s);
  CHECK(pi.status == process_status::exited);
  CHECK(pi.exit_code == 0);
  CHECK(admin.ping().which() == status::code::io_error);
}

TEST_CASE("caddy admin reports errors as status", "[caddy]") {
  SKIP_WITHOUT_CADDY();
  caddy_fixture fx;
  caddy_admin admin = fx.admin();

  status s = admin.set_upstream("no-such-route", fx.b.port);
  INFO(s.message());
  CHECK(s.which() == status::code::not_found);
  CHECK(s.message().find("unknown object ID 'no-such-route'") != std::string::npos);
  CHECK(s.message().find("HTTP 404") != std::string::npos);

  // A port another process holds: Caddy refuses the whole change and keeps the old config.
  port_squatter squat;
  proxy_route blog = route("blog-production", "", squat.port, fx.b.port);
  s = admin.put_server(caddy_port_server_name(blog.id), port_server_json(blog, "127.0.0.1"));
  INFO(s.message());
  CHECK(s.which() == status::code::io_error);
  CHECK(s.message().find("address already in use") != std::string::npos);
  CHECK(serves(fx.shop_port(), "", "A"));
  json cfg;
  REQUIRE_OK(admin.config(&cfg));
  CHECK_FALSE(cfg["apps"]["http"]["servers"].contains("port-blog-production"));

  // Config Caddy cannot provision.
  json broken = port_server_json(blog, "127.0.0.1");
  broken["listen"] = json::array({"127.0.0.1:" + std::to_string(free_port())});
  broken["routes"][0]["handle"][0]["handler"] = "no_such_handler";
  s = admin.put_server("port-broken", broken);
  INFO(s.message());
  CHECK_FALSE(s);
  CHECK(s.message().find("no_such_handler") != std::string::npos);

  // Names that would escape the admin URL path never reach Caddy.
  CHECK(admin.set_upstream("../config", fx.b.port).which() == status::code::invalid_argument);
  CHECK(admin.delete_id("a b").which() == status::code::invalid_argument);
  CHECK(admin.delete_server("").which() == status::code::invalid_argument);
  CHECK(admin.add_host_route(json{{"match", json::array()}}).which() == status::code::invalid_argument);
  CHECK(admin.load(json::array()).which() == status::code::invalid_argument);

  // Nothing listening: io_error.
  caddy_admin nobody(fx.tmp / "nobody.sock");
  s = nobody.set_upstream("shop-production-host", fx.b.port);
  INFO(s.message());
  CHECK(s.which() == status::code::io_error);
  CHECK(serves(fx.http(), "shop.localhost", "A"));
}

