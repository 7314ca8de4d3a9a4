// Canary splits in a real HAProxy 2.6 (runtime/proxy/haproxy.hpp) with in-process upstreams:
// the share a split sends to the candidate on the stable port and the host listener, with no
// reload; sticky clients by cookie; the request log received by berth's traffic meter
// (runtime/proxy/traffic_meter.hpp) for both sides and for nothing else; splits removed by a
// full table from the current and the old workers. Skipped (WARN) without haproxy.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <catch2/catch.hpp>

#include "runtime/proxy/router.hpp"
#include "runtime/proxy/traffic_meter.hpp"
#include "tests/integration/haproxy_support.hpp"

using namespace berth;
using namespace berth::it;
using namespace std::chrono_literals;

namespace {

// Polls `done` every 10 ms for at most 10 s.
bool within_10s(const std::function<bool()>& done) {
  for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

traffic_split split_to(uint16_t port, int percent, bool sticky = false) {
  traffic_split s;
  s.port = port;
  s.percent = static_cast<uint8_t>(percent);
  s.sticky = sticky;
  return s;
}

// The table berth's proxy actor would apply for the fixture's layout.
route_table table_of(const router_layout& l) {
  route_table t;
  t.http_port = l.http_port;
  t.ask_port = l.ask_port;
  t.routes = l.routes;
  return t;
}

// GETs on a kept-alive connection, and on a new one once HAProxy closed it (as it does after
// every answer of a split route).
class reconnecting_client {
 public:
  explicit reconnecting_client(uint16_t port) : port_(port), conn_(std::make_unique<plain_connection>(port)) {}
  plain_response get(const std::string& host, int wait_ms = 2000) {
    auto r = conn_->get(host, "/", wait_ms);
    if (r.status < 0 || r.header("connection") == "close") conn_ = std::make_unique<plain_connection>(port_), ++reconnects_;
    return r;
  }
  int reconnects() const { return reconnects_; }

 private:
  uint16_t port_;
  std::unique_ptr<plain_connection> conn_;
  int reconnects_ = 0;
};

// `n` GETs to `port` with Host `host`: how many answers had each body ("<failed>" for a
// request that got no 200), and "<kept>" how many left the connection open.
std::map<std::string, int> bodies_of(uint16_t port, const std::string& host, int n) {
  std::map<std::string, int> seen;
  reconnecting_client c(port);
  for (int i = 0; i < n; ++i) {
    auto r = c.get(host);
    ++seen[r.status == 200 ? r.body : "<failed>"];
  }
  seen["<kept>"] = n - c.reconnects();
  return seen;
}

// One GET on a new connection, with a Cookie header when `cookie` is not empty.
struct cookie_answer {
  std::string body, set_cookie;
};
cookie_answer get_with_cookie(uint16_t port, const std::string& host, const std::string& cookie) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(5, 0);
  httplib::Headers h{{"Host", host}};
  if (!cookie.empty()) h.emplace("Cookie", cookie);
  auto res = cli.Get("/", h);
  if (!res) return {"<" + httplib::to_string(res.error()) + ">", ""};
  return {res->status == 200 ? res->body : "<" + std::to_string(res->status) + ">", res->get_header_value("Set-Cookie")};
}

// "berth_canary=candidate-41008; Path=/; ..." → "berth_canary=candidate-41008".
std::string cookie_pair(const std::string& set_cookie) { return set_cookie.substr(0, set_cookie.find(';')); }

// Lines the meter received for `ports` plus what the worker could not send: the requests
// HAProxy logged since `dropped_before`.
bool all_logged(const traffic_meter& meter, const std::string& dir, long dropped_before,
                const std::vector<uint16_t>& ports, uint64_t sent) {
  uint64_t counted = 0;
  for (auto p : ports) counted += meter.read(p).requests;
  long dropped = std::max(0L, dropped_logs(dir) - dropped_before);
  return counted + static_cast<uint64_t>(dropped) >= sent;
}

}  // namespace

TEST_CASE("haproxy canary: a split sends its share to the candidate on the stable port and by host, with no reload",
          "[integration][haproxy][canary]") {
  SKIP_WITHOUT_HAPROXY();
  tiny_upstream a("A"), b("B");
  uint16_t shop_port = free_port();
  router_fixture f({route("shop", "shop.test", shop_port, a.port(), {"shop.example.com"})});
  auto router = make_haproxy_router(f.layout.dir, haproxy_binary());
  auto pids = f.workers();
  long reloads = master_reloads(f.layout.dir);
  REQUIRE(reloads >= 0);
  // The config HAProxy runs (the split and log rules included) is accepted without a warning.
  auto check_log = f.layout.dir + "/check.log";
  CHECK(run_to_end({haproxy_binary(), "-c", "-f", f.layout.dir + "/haproxy.cfg"}, check_log) == 0);
  CHECK(read_file(check_log).find("WARNING") == std::string::npos);

  f.layout.routes[0].split = split_to(b.port(), 20);
  REQUIRE(router->apply(table_of(f.layout)));
  CHECK(read_file(f.layout.dir + "/canary.map") == std::to_string(a.port()) + " " + std::to_string(b.port()) + ":20:0\n");
  const int n = 500;
  for (auto [port, host] : {std::pair<uint16_t, std::string>{shop_port, "anything"},
                            {f.layout.http_port, "shop.test"},
                            {f.layout.http_port, "SHOP.example.com"}}) {
    auto seen = bodies_of(port, host, n);
    INFO("port " << port << " host " << host << ": A " << seen["A\n"] << ", B " << seen["B\n"] << ", failed "
                 << seen["<failed>"]);
    CHECK(seen["<failed>"] == 0);
    CHECK(seen["A\n"] + seen["B\n"] == n);
    CHECK(seen["<kept>"] == 0);  // every split answer closes its connection
    // 20 % of 500 is 100 (σ ≈ 9): 50-150 fails a correct split about once in 10^7 runs.
    CHECK(seen["B\n"] >= n / 10);
    CHECK(seen["B\n"] <= n * 3 / 10);
  }

  // Back to 0 %: nothing reaches the candidate.
  f.layout.routes[0].split = {};
  REQUIRE(router->apply(table_of(f.layout)));
  CHECK(read_file(f.layout.dir + "/canary.map").empty());
  auto whole = bodies_of(shop_port, "x", 100);
  CHECK(whole["A\n"] == 100);
  CHECK(whole["<kept>"] == 100);  // kept alive again
  CHECK(bodies_of(f.layout.http_port, "shop.test", 100)["A\n"] == 100);
  // A split of 0 % is no split either; 100 % sends everything.
  f.layout.routes[0].split = split_to(b.port(), 0);
  REQUIRE(router->apply(table_of(f.layout)));
  CHECK(bodies_of(shop_port, "x", 50)["A\n"] == 50);
  f.layout.routes[0].split = split_to(b.port(), 100);
  REQUIRE(router->apply(table_of(f.layout)));
  CHECK(bodies_of(shop_port, "x", 50)["B\n"] == 50);

  // None of it reloaded: same worker, same reload count.
  CHECK(f.workers() == pids);
  CHECK(master_reloads(f.layout.dir) == reloads);

  // Nonsense splits are refused before anything is written.
  auto bad = f.layout;
  bad.routes[0].split = split_to(a.port(), 20);  // to its own upstream
  CHECK(router->apply(table_of(bad)).which() == status::code::invalid_argument);
  bad.routes[0].split = split_to(b.port(), 101);
  CHECK(router->apply(table_of(bad)).which() == status::code::invalid_argument);
  CHECK(bodies_of(shop_port, "x", 10)["B\n"] == 10);
}

TEST_CASE("haproxy canary: a sticky split keeps each client on the side it first got, by cookie",
          "[integration][haproxy][canary]") {
  SKIP_WITHOUT_HAPROXY();
  tiny_upstream a("A"), b("B");
  uint16_t shop_port = free_port();
  router_fixture f({route("shop", "shop.test", shop_port, a.port())});
  f.layout.routes[0].split = split_to(b.port(), 50, true);
  REQUIRE(write_router_files(f.layout));
  REQUIRE(f.sync());

  // New clients get a cookie naming the side they got and the candidate port; with it, 50
  // more requests stay there. Both sides are seen within a few clients (50 % each).
  std::map<std::string, std::string> cookie_of_side;
  for (int client = 0; client < 200 && cookie_of_side.size() < 2; ++client) {
    auto first = get_with_cookie(client % 2 ? shop_port : f.layout.http_port, "shop.test", "");
    INFO(first.body << " " << first.set_cookie);
    REQUIRE((first.body == "A\n" || first.body == "B\n"));
    std::string side = first.body == "B\n" ? "candidate" : "stable";
    CHECK(first.set_cookie ==
          "berth_canary=" + side + "-" + std::to_string(b.port()) + "; Path=/; HttpOnly; SameSite=Lax");
    cookie_of_side.emplace(first.body, cookie_pair(first.set_cookie));
  }
  REQUIRE(cookie_of_side.size() == 2);
  for (const auto& [body, cookie] : cookie_of_side) {
    INFO(cookie);
    int same = 0, set_again = 0;
    for (int i = 0; i < 50; ++i) {
      // Other cookies around it do not matter.
      auto r = get_with_cookie(i % 2 ? shop_port : f.layout.http_port, "shop.test", "theme=dark; " + cookie + "; x=1");
      same += r.body == body;
      set_again += !r.set_cookie.empty();
    }
    CHECK(same == 50);
    CHECK(set_again == 0);
  }

  // A cookie of an earlier canary (another candidate port) pins nobody: it rolls again and
  // gets this canary's cookie.
  std::map<std::string, int> seen;
  for (int i = 0; i < 40; ++i) {
    auto r = get_with_cookie(shop_port, "x", "berth_canary=candidate-" + std::to_string(free_port()));
    ++seen[r.body];
    CHECK(cookie_pair(r.set_cookie) == cookie_of_side[r.body]);
  }
  CHECK(seen["A\n"] > 0);
  CHECK(seen["B\n"] > 0);

  // Without stickiness no cookie is set, and a pinned client rolls like any other.
  f.layout.routes[0].split = split_to(b.port(), 50, false);
  REQUIRE(f.sync());
  seen.clear();
  for (int i = 0; i < 40; ++i) {
    auto r = get_with_cookie(shop_port, "x", cookie_of_side["B\n"]);
    ++seen[r.body];
    CHECK(r.set_cookie.empty());
  }
  CHECK(seen["A\n"] > 0);
  CHECK(seen["B\n"] > 0);
}

TEST_CASE("haproxy canary: the traffic meter receives each split request with its side's port, status and latency",
          "[integration][haproxy][canary]") {
  SKIP_WITHOUT_HAPROXY();
  tiny_upstream a("A"), other("other");
  answering_upstream failing("F", 500), slow("S", 200, 100ms), body_reader("R", 200);
  uint16_t shop_port = free_port(), blog_port = free_port();
  // HAProxy starts with no socket at traffic.sock; berth binds it later.
  router_fixture f({route("shop", "shop.test", shop_port, a.port()), route("blog", "blog.test", blog_port, other.port())});
  auto path = traffic_socket_path(f.layout.dir);
  std::shared_ptr<traffic_meter> meter;
  REQUIRE(traffic_meter::open(path, &meter));
  long dropped = dropped_logs(f.layout.dir);
  REQUIRE(dropped >= 0);

  // A candidate answering 500 on half the requests; blog (no split) interleaved.
  meter->restart({a.port(), failing.port(), other.port()});
  f.layout.routes[0].split = split_to(failing.port(), 50);
  REQUIRE(f.sync());
  int to_a = 0, to_failing = 0;
  reconnecting_client shop(shop_port);
  plain_connection blog(blog_port);
  for (int i = 0; i < 200; ++i) {
    auto r = shop.get("x");
    r.status == 200 && r.body == "A\n" ? ++to_a : 0;
    r.status == 500 && r.body == "F\n" ? ++to_failing : 0;
    auto other_answer = blog.get("blog.test", "/");
    CHECK(body_of(other_answer) == "other\n");
    CHECK(other_answer.header("connection").empty());  // no split: kept alive
  }
  CHECK(to_a + to_failing == 200);
  CHECK(to_failing > 0);
  REQUIRE(within_10s([&] { return all_logged(*meter, f.layout.dir, dropped, {a.port(), failing.port()}, 200); }));
  auto stable = meter->read(a.port()), candidate = meter->read(failing.port());
  INFO("A " << stable.requests << "/" << to_a << ", failing " << candidate.requests << "/" << to_failing
            << ", dropped " << dropped_logs(f.layout.dir) - dropped);
  if (dropped_logs(f.layout.dir) == dropped) {  // nothing dropped: every request counted once
    CHECK(stable.requests == static_cast<uint64_t>(to_a));
    CHECK(candidate.requests == static_cast<uint64_t>(to_failing));
  }
  CHECK(stable.errors == 0);
  CHECK(candidate.errors == candidate.requests);
  // blog has no split: it logged nothing (and every datagram was one of shop's).
  CHECK(meter->read(other.port()).requests == 0);
  CHECK(meter->received() == stable.requests + candidate.requests);
  CHECK(meter->malformed() == 0);

  // A candidate 100 ms slower: its p99 shows it.
  meter->restart({a.port(), slow.port()});
  f.layout.routes[0].split = split_to(slow.port(), 50);
  REQUIRE(f.sync());
  int slow_answers = 0;
  for (int i = 0; i < 400 && (i < 40 || slow_answers == 0); ++i) slow_answers += body_of(shop.get("x")) == "S\n";
  REQUIRE(slow_answers > 0);
  REQUIRE(within_10s([&] { return meter->read(slow.port()).requests > 0; }));
  CHECK(meter->read(slow.port()).p99_ms >= 100);
  CHECK(meter->read(slow.port()).errors == 0);

  // A client that gives up before any answer (a POST cut off mid-body) is not the app's
  // error, and not counted at all.
  meter->restart({body_reader.port()});
  f.layout.routes[0].split = split_to(body_reader.port(), 100);
  REQUIRE(f.sync());
  uint64_t received = meter->received();
  {
    // plain_connection only GETs: a raw POST.
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(shop_port);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    std::string post = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789";
    REQUIRE(::send(fd, post.data(), post.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(post.size()));
    std::this_thread::sleep_for(100ms);  // let HAProxy pass the head on (no assertion on time)
    ::close(fd);
  }
  REQUIRE(within_10s([&] { return meter->received() > received; }));
  CHECK(meter->malformed() == 0);
  CHECK(meter->read(body_reader.port()).requests == 0);
  CHECK(meter->read(body_reader.port()).errors == 0);

  // A candidate that resets the connection before any answer: HAProxy's 502 (the request is the
  // first on its connection: see haproxy.hpp), an error.
  answering_upstream crashing("X", 0);
  meter->restart({crashing.port()});
  f.layout.routes[0].split = split_to(crashing.port(), 100);
  REQUIRE(f.sync());
  for (int i = 0; i < 3; ++i) CHECK(shop.get("x").status == 502);
  REQUIRE(within_10s([&] { return meter->read(crashing.port()).requests == 3; }));
  CHECK(meter->read(crashing.port()).errors == 3);

  // A candidate nobody listens on: retried, then HAProxy's 503, an error of that side.
  uint16_t refused = free_port();
  meter->restart({refused});
  f.layout.routes[0].split = split_to(refused, 100);
  REQUIRE(f.sync());
  plain_connection once(shop_port);
  CHECK(once.get("x", "/", 15000).status == 503);
  REQUIRE(within_10s([&] { return meter->read(refused).requests == 1; }));
  CHECK(meter->read(refused).errors == 1);

  // berth restarts (a new meter at the same path) while HAProxy keeps running: the workers
  // send every line to the path, so the new socket receives them.
  meter.reset();
  REQUIRE(traffic_meter::open(path, &meter));
  meter->restart({a.port(), failing.port()});
  f.layout.routes[0].split = split_to(failing.port(), 50);
  REQUIRE(f.sync());
  for (int i = 0; i < 20; ++i) shop.get("x");
  CHECK(within_10s([&] { return meter->read(a.port()).requests + meter->read(failing.port()).requests > 0; }));
}

TEST_CASE("haproxy canary: a full table without splits removes them from the current and the old worker",
          "[integration][haproxy][canary]") {
  SKIP_WITHOUT_HAPROXY();
  tiny_upstream a("A"), b("B"), chat("chat");
  uint16_t shop_port = free_port();
  router_fixture f({route("shop", "shop.test", shop_port, a.port()), route("chat", "chat.test", 0, chat.port())});
  auto router = make_haproxy_router(f.layout.dir, haproxy_binary());
  f.layout.routes[0].split = split_to(b.port(), 100);
  REQUIRE(router->apply(table_of(f.layout)));
  auto first = f.workers();
  REQUIRE(first.size() == 1);

  // Connections on the first worker: a tunnel keeps it alive after the reload; two kept-alive
  // clients of another route (no split, so their connections stay open) get one more answer
  // each from it after the reload.
  plain_connection tunnel(f.layout.http_port), kept(f.layout.http_port), kept2(f.layout.http_port);
  std::string err;
  REQUIRE(tunnel.upgrade("chat.test", &err));
  CHECK(body_of(kept.get("chat.test", "/")) == "chat\n");
  CHECK(body_of(kept2.get("chat.test", "/")) == "chat\n");

  // A new project's stable port: the config changes, HAProxy reloads, the split stays.
  uint16_t news_port = free_port();
  f.layout.routes.push_back(route("news", "news.test", news_port, a.port()));
  REQUIRE(router->apply(table_of(f.layout)));
  auto after = f.workers();
  REQUIRE(after.size() == 2);
  CHECK(after[1] == first[0]);
  CHECK(body_of(get_once(shop_port, "x")) == "B\n");  // the new worker read canary.map
  CHECK(body_of(kept.get("shop.test", "/")) == "B\n");  // the old worker has it too

  // What a restarted berth applies: the same routes, no split.
  for (auto& r : f.layout.routes) r.split = {};
  REQUIRE(router->apply(table_of(f.layout)));
  CHECK(f.workers() == after);  // no reload
  for (int pid : after) {
    INFO("worker " << pid);
    auto map = runtime_command(f.layout.dir + "/master.sock", "@!" + std::to_string(pid) + " show map " +
                                                                   f.layout.dir + "/canary.map");
    CHECK(map.find(std::to_string(a.port())) == std::string::npos);
    CHECK(map.find("Unknown") == std::string::npos);
  }
  auto last = kept2.get("shop.test", "/");  // answered by the old worker
  CHECK(body_of(last) == "A\n");
  CHECK(last.header("connection") == "close");  // idle-close-on-response of an old worker
  CHECK(body_of(get_once(shop_port, "x")) == "A\n");
  CHECK(tunnel.echo("still open", &err));
}

TEST_CASE("caddy router: refuses any traffic split", "[integration][canary]") {
  temp_dir tmp;
  auto caddy = make_caddy_router(tmp.path() + "/caddy", "/nonexistent/caddy");
  route_table t;
  t.http_port = free_port();
  t.routes = {route("shop", "shop.test", free_port(), 4001)};
  t.routes[0].split = split_to(4002, 10);
  auto applied = caddy->apply(t);
  CHECK(applied.which() == status::code::invalid_argument);
  CHECK(applied.message().find("caddy cannot split traffic") != std::string::npos);
  instance_spec spec;
  CHECK(caddy->prepare(t, &spec).which() == status::code::invalid_argument);
  CHECK(list_dir(tmp.path()).empty());  // nothing written
}
