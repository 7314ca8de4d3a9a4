#include <catch2/catch.hpp>

#include <filesystem>
#include <set>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actors/event_store.hpp"
#include "actors/names.hpp"
#include "actors/port_allocator.hpp"
#include "messages/atoms.hpp"
#include "runtime/net/ports.hpp"

using namespace berth;
namespace fs = std::filesystem;

namespace {

struct allocator_fixture {
  std::string dir;
  std::shared_ptr<event_log> log;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor store, ports;
  port_range production{8000, 9999}, preview{4000, 7999};

  allocator_fixture() {
    char tmpl[] = "/tmp/berth-ports-XXXXXX";
    dir = mkdtemp(tmpl);
    cfg.add_message_types<caf::id_block::berth>();
    sys = std::make_unique<caf::actor_system>(cfg);
    open_log();
    start();
  }
  void open_log() {
    std::unique_ptr<event_log> l;
    REQUIRE(event_log::open(dir + "/events", event_log::mode::read_write, &l));
    log = std::move(l);
    store = spawn_event_store(*sys, log);
    sys->registry().put(names::event_store, store);
  }
  void start() { ports = sys->spawn(port_allocator, production, preview); }
  void stop_all() {
    caf::anon_send_exit(ports, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
    caf::scoped_actor self{*sys};
    self->wait_for(ports, store);
  }
  port_assignment lease(const std::string& name) {
    caf::scoped_actor self{*sys};
    port_assignment out;
    self->request(ports, caf::duration{std::chrono::seconds(10)}, lease_atom_v, name)
        .receive([&](port_assignment& a) { out = a; },
                 [&](caf::error& e) { FAIL(sys->render(e)); });
    return out;
  }
  ~allocator_fixture() {
    stop_all();
    sys.reset();
    fs::remove_all(dir);
  }
};

}  // namespace

TEST_CASE("production port is 8000 + FNV-1a-64(name) % 2000 when free", "[ports]") {
  allocator_fixture f;
  auto a = f.lease("shop");
  auto expected = static_cast<uint16_t>(8000 + fnv1a64("shop") % 2000);
  if (port_is_free(expected)) CHECK(a.production == expected);
  CHECK(f.preview.contains(a.preview));
  CHECK(f.lease("shop").production == a.production);  // idempotent per project
}

TEST_CASE("200 concurrent leases get 200 distinct ports, and survive a restart", "[ports]") {
  allocator_fixture f;
  std::vector<port_assignment> got(200);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = t; i < 200; i += 8) got[i] = f.lease("project-" + std::to_string(i));
    });
  for (auto& th : threads) th.join();
  std::set<uint16_t> production, preview;
  for (auto& a : got) {
    CHECK(f.production.contains(a.production));
    CHECK(f.preview.contains(a.preview));
    production.insert(a.production);
    preview.insert(a.preview);
  }
  CHECK(production.size() == 200);
  CHECK(preview.size() == 200);

  // A new incarnation folds the `ports` stream: no port is handed out twice.
  caf::anon_send_exit(f.ports, caf::exit_reason::user_shutdown);
  f.start();
  for (int i = 0; i < 20; ++i) {
    auto a = f.lease("late-" + std::to_string(i));
    CHECK(production.insert(a.production).second);
    CHECK(preview.insert(a.preview).second);
  }
}

TEST_CASE("ports busy on the host are skipped, probing wraps around", "[ports]") {
  allocator_fixture f;
  caf::anon_send_exit(f.ports, caf::exit_reason::user_shutdown);
  // A two-port range {held - 1, held}: `held` is held by a listening socket, and held - 1 was
  // free a moment ago (bound and closed here; any port next to an ephemeral one may be in use by
  // another test's connection, so it is checked rather than assumed).
  auto bind_loopback = [](uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  };
  int fd = -1;
  uint16_t held = 0;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    fd = bind_loopback(0);
    REQUIRE(fd >= 0);
    REQUIRE(::listen(fd, 1) == 0);
    sockaddr_in addr{};
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    held = ntohs(addr.sin_port);
    int below = held > 1 ? bind_loopback(static_cast<uint16_t>(held - 1)) : -1;
    if (below >= 0) {
      ::close(below);
    } else {
      ::close(fd);
      fd = -1;
    }
  }
  REQUIRE(fd >= 0);
  // Pick a range of two ports where the name hashes to the held one.
  std::string name;
  for (int i = 0; name.empty(); ++i) {
    auto candidate = "busy-" + std::to_string(i);
    if (fnv1a64(candidate) % 2 == 1) name = candidate;
  }
  f.production = {static_cast<uint16_t>(held - 1), held};
  f.start();
  auto a = f.lease(name);
  CHECK(a.production == held - 1);  // slot `held` was busy: wrapped to the range start
  ::close(fd);
}

TEST_CASE("releases free the ports, reconcile drops leases of unknown projects", "[ports]") {
  allocator_fixture f;
  f.lease("keep-me");
  f.lease("orphan");
  caf::scoped_actor self{*f.sys};
  auto count = [&] {
    uint64_t n = 0;
    self->request(f.ports, caf::infinite, leases_atom_v).receive([&](uint64_t x) { n = x; },
                                                                 [&](caf::error&) {});
    return n;
  };
  CHECK(count() == 4);
  uint64_t released = 0;
  self->request(f.ports, caf::infinite, reconcile_atom_v, std::vector<std::string>{"keep-me"})
      .receive([&](uint64_t n) { released = n; }, [&](caf::error&) {});
  CHECK(released == 2);
  CHECK(count() == 2);
  self->request(f.ports, caf::infinite, release_atom_v, std::string{"keep-me"}, std::string{"deleted"})
      .receive([&](uint64_t n) { released = n; }, [&](caf::error&) {});
  CHECK(released == 2);
  CHECK(count() == 0);
}
