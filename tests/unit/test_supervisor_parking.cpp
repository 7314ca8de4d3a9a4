// Unit tests for supervisor_core's failure hook (on_child_failed / restart_child): what lets the
// projects supervisor park a project that keeps failing instead of escalating (issue 13, item 8).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <caf/all.hpp>

#include "actors/supervisor.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"

using namespace std::chrono_literals;
using berth::child_spec;
using berth::restart_type;
using berth::supervisor_flags;

namespace {

using park_restart_atom = caf::atom_constant<caf::atom("tprkrst")>;

struct parking_state {
  berth::supervisor_core sup;
};

struct counters {
  std::atomic<int> starts{0};
  std::atomic<int> parked{0};
};

// A child that quits with an error at once for its first `failing` starts, then stays up.
child_spec flaky(std::shared_ptr<counters> c, int failing) {
  auto start = [c, failing](caf::actor_system& sys) {
    int n = ++c->starts;
    return sys.spawn([n, failing](caf::event_based_actor* self) -> caf::behavior {
      if (n <= failing) self->quit(berth::make_error(berth::errc::storage_error, "cannot start"));
      return {[n](berth::ping_atom) { return n; }};
    });
  };
  return child_spec{"flaky", start, restart_type::permanent};
}

// A supervisor with intensity 1 that parks every failure and restarts only when told.
caf::behavior parking_supervisor(caf::stateful_actor<parking_state>* self, std::shared_ptr<counters> c,
                                 int failing) {
  supervisor_flags f;
  f.intensity = 1;
  f.period = 60s;
  self->state.sup.init(self, f, {flaky(c, failing)});
  self->state.sup.on_child_failed([c](const std::string&, const caf::error&) {
    ++c->parked;
    return true;
  });
  return berth::supervisor_handlers(self, self->state.sup)
      .or_else([self](park_restart_atom, const std::string& id) { return self->state.sup.restart_child(id); });
}

template <class F>
bool eventually(F pred, std::chrono::milliseconds limit = 3000ms) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

}  // namespace

TEST_CASE("supervisor - a parked child is not restarted or counted until restart_child",
          "[supervisor][containment]") {
  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::berth>();
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto c = std::make_shared<counters>();
  auto sup = sys.spawn(parking_supervisor, c, 4);

  // Four failures in a row, each one parked; intensity 1 would have given up at the second.
  for (int i = 1; i <= 4; ++i) {
    REQUIRE(eventually([&] { return c->parked == i; }));
    std::this_thread::sleep_for(20ms);
    CHECK(c->starts == i);  // nothing restarted it behind our back
    bool restarted = false;
    self->request(sup, 2s, park_restart_atom::value, std::string{"flaky"})
        .receive([&](bool ok) { restarted = ok; }, [&](caf::error& err) { FAIL(sys.render(err)); });
    CHECK(restarted);
  }
  // The fifth start stays up: the supervisor is alive and the child answers.
  REQUIRE(eventually([&] { return c->starts == 5; }));
  caf::actor child;
  REQUIRE(eventually([&] {
    self->request(sup, 1s, berth::which_child_atom_v, std::string{"flaky"})
        .receive([&](caf::actor& a) { child = a; }, [&](caf::error&) {});
    return static_cast<bool>(child);
  }));
  int answered = 0;
  self->request(child, 1s, berth::ping_atom_v).receive([&](int n) { answered = n; }, [&](caf::error&) {});
  CHECK(answered == 5);
  uint64_t restarts = 99;
  self->request(sup, 1s, berth::restart_count_atom_v).receive([&](uint64_t n) { restarts = n; }, [&](caf::error&) {});
  CHECK(restarts == 0);
  // A running child is not restarted again.
  bool again = true;
  self->request(sup, 1s, park_restart_atom::value, std::string{"flaky"}).receive([&](bool ok) { again = ok; },
                                                                             [&](caf::error&) {});
  CHECK_FALSE(again);
  self->send_exit(sup, caf::exit_reason::user_shutdown);
}
