// Unit tests for actors/supervisor: OTP restart semantics on CAF 0.17 links.
// Practical style: a real actor_system per test, scoped_actor requests with timeouts,
// polling with a deadline for asynchronous effects.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include "actors/supervisor.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "messages/supervision.hpp"

using namespace std::chrono_literals;
using berth::child_spec;
using berth::restart_strategy;
using berth::restart_type;
using berth::supervisor_flags;

namespace {

// Test-only: makes a test child quit normally.
using test_quit_atom = caf::atom_constant<caf::atom("testquit")>;

// Shared between a test and its children: starts and exits, in the order they happen.
struct probe {
  std::mutex mtx;
  std::map<std::string, int> starts;
  std::vector<std::string> start_log;
  std::vector<std::string> exit_log;

  int record_start(const std::string& id) {
    std::lock_guard<std::mutex> guard{mtx};
    start_log.push_back(id);
    return ++starts[id];
  }
  void record_exit(const std::string& id) {
    std::lock_guard<std::mutex> guard{mtx};
    exit_log.push_back(id);
  }
  int starts_of(const std::string& id) {
    std::lock_guard<std::mutex> guard{mtx};
    auto i = starts.find(id);
    return i == starts.end() ? 0 : i->second;
  }
  std::vector<std::string> starts_from(size_t n) {
    std::lock_guard<std::mutex> guard{mtx};
    return {start_log.begin() + std::min(n, start_log.size()), start_log.end()};
  }
  size_t start_count() {
    std::lock_guard<std::mutex> guard{mtx};
    return start_log.size();
  }
  std::vector<std::string> exits_from(size_t n) {
    std::lock_guard<std::mutex> guard{mtx};
    return {exit_log.begin() + std::min(n, exit_log.size()), exit_log.end()};
  }
  size_t exit_count() {
    std::lock_guard<std::mutex> guard{mtx};
    return exit_log.size();
  }
};
using probe_ptr = std::shared_ptr<probe>;

// The state's destructor runs in on_exit, i.e. before the exit_msg reaches the
// supervisor, so exit_log order is the real termination order.
struct child_state {
  probe_ptr p;
  std::string id;
  ~child_state() {
    if (p) p->record_exit(id);
  }
};

// Answers ping with its generation (1 = first start), throws on crash, quits normally
// on test_quit.
caf::behavior test_child(caf::stateful_actor<child_state>* self, probe_ptr p, std::string id,
                         int gen) {
  self->state.p = p;
  self->state.id = id;
  // Keeps the exception text in the exit reason and avoids stdout noise.
  self->set_exception_handler([](caf::scheduled_actor*, std::exception_ptr& ep) -> caf::error {
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      return caf::make_error(caf::sec::runtime_error, e.what());
    } catch (...) {
    }
    return caf::make_error(caf::sec::runtime_error);
  });
  return {
    [=](berth::ping_atom) { return gen; },
    [=](berth::crash_atom) -> int { throw std::runtime_error("crash on purpose: " + id); },
    [=](test_quit_atom) { self->quit(); },
  };
}

child_spec worker(probe_ptr p, std::string id, restart_type rt = restart_type::permanent) {
  auto start = [p, id](caf::actor_system& sys) {
    auto gen = p->record_start(id);
    return sys.spawn(test_child, p, id, gen);
  };
  return child_spec{id, start, rt};
}

supervisor_flags flags(restart_strategy s, int intensity, std::chrono::milliseconds period) {
  supervisor_flags f;
  f.strategy = s;
  f.intensity = intensity;
  f.period = period;
  return f;
}

bool is_berth_error(const caf::error& err, berth::errc code) {
  return err && err.category() == caf::atom("berth") &&
         err.code() == static_cast<uint8_t>(code);
}

caf::actor_system_config& configure(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::berth>();
  cfg.set("scheduler.max-threads", 2);
  return cfg;
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

struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{configure(cfg)};
  probe_ptr p = std::make_shared<probe>();
  std::vector<caf::actor> owned;

  ~fixture() {
    // A failed test must not leave live actors behind (~actor_system would wait).
    for (auto& a : owned) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    owned.clear();
  }

  caf::actor spawn_sup(supervisor_flags f, std::vector<child_spec> specs) {
    auto sup = sys.spawn(berth::supervisor, f, std::move(specs));
    owned.push_back(sup);
    return sup;
  }

  template <class T, class... Ts>
  caf::expected<T> ask(const caf::actor& dst, Ts&&... xs) {
    caf::expected<T> res{caf::make_error(caf::sec::request_timeout)};
    caf::scoped_actor self{sys};
    self->request(dst, 2s, std::forward<Ts>(xs)...)
        .receive([&](T& x) { res = std::move(x); }, [&](caf::error& err) { res = std::move(err); });
    return res;
  }

  caf::actor which(const caf::actor& sup, const std::string& id) {
    auto res = ask<caf::actor>(sup, berth::which_child_atom::value, id);
    return res ? *res : caf::actor{};
  }

  std::vector<std::string> children(const caf::actor& sup) {
    auto res = ask<std::vector<std::string>>(sup, berth::which_children_atom::value);
    return res ? *res : std::vector<std::string>{"<error>"};
  }

  int64_t restarts(const caf::actor& sup) {
    auto res = ask<uint64_t>(sup, berth::restart_count_atom::value);
    return res ? static_cast<int64_t>(*res) : -1;
  }

  int ping(const caf::actor& a) {
    auto res = ask<int>(a, berth::ping_atom::value);
    return res ? *res : -1;
  }

  // The exit reason of `a` once it is down (at once if already dead); nullopt if it
  // is still alive after `limit`.
  std::optional<caf::error> down_reason(const caf::actor& a,
                                        std::chrono::milliseconds limit = 3000ms) {
    std::optional<caf::error> res;
    caf::scoped_actor self{sys};
    self->monitor(a);
    self->receive([&](caf::down_msg& dm) { res = dm.reason; }, caf::after(limit) >> [] {});
    return res;
  }

  // Crashes the current child `id` and waits until the supervisor runs a new one.
  caf::actor crash_and_wait_restart(const caf::actor& sup, const std::string& id) {
    auto old = which(sup, id);
    REQUIRE(old);
    caf::anon_send(old, berth::crash_atom::value);
    caf::actor fresh;
    REQUIRE(eventually([&] {
      fresh = which(sup, id);
      return fresh && fresh != old;
    }));
    return fresh;
  }
};

const auto default_flags = flags(restart_strategy::one_for_one, 3, 5000ms);

}  // namespace

TEST_CASE_METHOD(fixture, "supervisor: permanent child is restarted after any exit",
                 "[supervisor]") {
  auto sup = spawn_sup(default_flags, {worker(p, "a")});
  auto a1 = which(sup, "a");
  REQUIRE(a1);
  CHECK(ping(a1) == 1);
  CHECK(p->starts_of("a") == 1);

  auto a2 = crash_and_wait_restart(sup, "a");
  CHECK(a2.address() != a1.address());
  CHECK(p->starts_of("a") == 2);
  CHECK(ping(a2) == 2);
  CHECK(restarts(sup) == 1);
  auto r1 = down_reason(a1);
  REQUIRE(r1);
  CHECK(*r1 == caf::sec::runtime_error);

  // A normal exit of a permanent child is restarted too.
  caf::anon_send(a2, test_quit_atom::value);
  caf::actor a3;
  REQUIRE(eventually([&] {
    a3 = which(sup, "a");
    return a3 && a3 != a2;
  }));
  CHECK(ping(a3) == 3);
  CHECK(restarts(sup) == 2);
  CHECK(children(sup) == std::vector<std::string>{"a"});
}

TEST_CASE_METHOD(fixture, "supervisor: transient child restarts only after abnormal exits",
                 "[supervisor]") {
  auto sup = spawn_sup(default_flags, {worker(p, "t", restart_type::transient),
                                       worker(p, "u", restart_type::transient),
                                       worker(p, "keep")});
  auto t2 = crash_and_wait_restart(sup, "t");
  CHECK(ping(t2) == 2);
  CHECK(restarts(sup) == 1);

  // Normal exit: not restarted, removed.
  caf::anon_send(t2, test_quit_atom::value);
  REQUIRE(down_reason(t2));
  REQUIRE(eventually([&] { return children(sup) == std::vector<std::string>{"u", "keep"}; }));
  // user_shutdown from elsewhere is not abnormal either.
  auto u1 = which(sup, "u");
  REQUIRE(u1);
  caf::anon_send_exit(u1, caf::exit_reason::user_shutdown);
  REQUIRE(eventually([&] { return children(sup) == std::vector<std::string>{"keep"}; }));
  std::this_thread::sleep_for(100ms);
  CHECK(p->starts_of("t") == 2);
  CHECK(p->starts_of("u") == 1);
  CHECK(restarts(sup) == 1);
  auto missing = ask<caf::actor>(sup, berth::which_child_atom::value, std::string{"t"});
  REQUIRE_FALSE(missing);
  CHECK(is_berth_error(missing.error(), berth::errc::not_found));
}

TEST_CASE_METHOD(fixture, "supervisor: temporary child is never restarted", "[supervisor]") {
  auto sup = spawn_sup(default_flags, {worker(p, "tmp", restart_type::temporary), worker(p, "b")});
  auto b1 = which(sup, "b");
  auto tmp = which(sup, "tmp");
  REQUIRE(tmp);
  caf::anon_send(tmp, berth::crash_atom::value);
  REQUIRE(down_reason(tmp));
  REQUIRE(eventually([&] { return children(sup) == std::vector<std::string>{"b"}; }));
  std::this_thread::sleep_for(100ms);
  CHECK(p->starts_of("tmp") == 1);
  CHECK(restarts(sup) == 0);
  CHECK_FALSE(which(sup, "tmp"));
  CHECK(which(sup, "b") == b1);
}

TEST_CASE_METHOD(fixture, "supervisor: one_for_one restarts only the dead child",
                 "[supervisor]") {
  auto sup = spawn_sup(default_flags, {worker(p, "a"), worker(p, "b"), worker(p, "c")});
  auto b1 = which(sup, "b");
  auto c1 = which(sup, "c");
  REQUIRE(b1);
  REQUIRE(c1);
  auto a2 = crash_and_wait_restart(sup, "a");
  std::this_thread::sleep_for(50ms);
  CHECK(which(sup, "b") == b1);
  CHECK(which(sup, "c") == c1);
  CHECK(p->starts_of("a") == 2);
  CHECK(p->starts_of("b") == 1);
  CHECK(p->starts_of("c") == 1);
  CHECK(ping(b1) == 1);
  CHECK(restarts(sup) == 1);
}

TEST_CASE_METHOD(fixture, "supervisor: one_for_all stops the others in reverse order and "
                          "restarts all in start order, counting one restart",
                 "[supervisor]") {
  // intensity 1: counting the stopped siblings as failures would escalate.
  auto sup = spawn_sup(flags(restart_strategy::one_for_all, 1, 5000ms),
                       {worker(p, "a"), worker(p, "b"), worker(p, "c"),
                        worker(p, "tmp", restart_type::temporary)});
  auto a1 = which(sup, "a");
  auto b1 = which(sup, "b");
  auto c1 = which(sup, "c");
  REQUIRE((a1 && b1 && c1));
  auto starts0 = p->start_count();
  auto exits0 = p->exit_count();

  caf::anon_send(b1, berth::crash_atom::value);
  REQUIRE(eventually([&] { return p->start_count() == starts0 + 3; }));
  // Termination order: the crashed child, then the others in reverse start order.
  CHECK(p->exits_from(exits0) == std::vector<std::string>{"b", "tmp", "c", "a"});
  // Restart order: start order, temporary child dropped.
  CHECK(p->starts_from(starts0) == std::vector<std::string>{"a", "b", "c"});
  CHECK(children(sup) == std::vector<std::string>{"a", "b", "c"});

  auto a2 = which(sup, "a");
  auto b2 = which(sup, "b");
  auto c2 = which(sup, "c");
  REQUIRE((a2 && b2 && c2));
  CHECK(a2 != a1);
  CHECK(b2 != b1);
  CHECK(c2 != c1);
  CHECK(ping(a2) == 2);
  CHECK(ping(c2) == 2);
  auto ra = down_reason(a1);
  REQUIRE(ra);
  CHECK(*ra == caf::exit_reason::user_shutdown);

  std::this_thread::sleep_for(100ms);
  CHECK(restarts(sup) == 1);
  CHECK(p->start_count() == starts0 + 3);  // no second round
  CHECK_FALSE(down_reason(sup, 0ms));      // still alive
}

TEST_CASE_METHOD(fixture, "supervisor: too many restarts in the period escalate",
                 "[supervisor]") {
  auto sup = spawn_sup(flags(restart_strategy::one_for_one, 2, 5000ms),
                       {worker(p, "a"), worker(p, "b")});
  auto b = which(sup, "b");
  REQUIRE(b);
  crash_and_wait_restart(sup, "a");
  auto a3 = crash_and_wait_restart(sup, "a");
  CHECK(restarts(sup) == 2);  // intensity 2: two restarts are still fine
  CHECK_FALSE(down_reason(sup, 0ms));

  caf::anon_send(a3, berth::crash_atom::value);  // third within the period
  auto reason = down_reason(sup);
  REQUIRE(reason);
  CHECK(is_berth_error(*reason, berth::errc::restart_intensity));
  CHECK(berth::view(*reason).code == berth::errc::restart_intensity);
  // The children were stopped before the supervisor exited.
  auto rb = down_reason(b, 0ms);
  REQUIRE(rb);
  CHECK(*rb == caf::exit_reason::user_shutdown);
  CHECK(down_reason(a3, 0ms));
  CHECK(p->starts_of("a") == 3);
  CHECK(p->starts_of("b") == 1);
}

TEST_CASE_METHOD(fixture, "supervisor: crashes spaced beyond the period do not escalate",
                 "[supervisor]") {
  auto sup = spawn_sup(flags(restart_strategy::one_for_one, 1, 300ms), {worker(p, "a")});
  for (int i = 0; i < 3; ++i) {
    crash_and_wait_restart(sup, "a");
    std::this_thread::sleep_for(400ms);
  }
  CHECK(restarts(sup) == 3);
  CHECK_FALSE(down_reason(sup, 0ms));
  // Two within the period do.
  auto a = crash_and_wait_restart(sup, "a");
  caf::anon_send(a, berth::crash_atom::value);
  auto reason = down_reason(sup);
  REQUIRE(reason);
  CHECK(is_berth_error(*reason, berth::errc::restart_intensity));
}

TEST_CASE_METHOD(fixture, "supervisor: a child dead before it is linked is still noticed",
                 "[supervisor]") {
  child_spec doomed{"doomed",
                    [p = p](caf::actor_system& sys) {
                      p->record_start("doomed");
                      auto dead = std::make_shared<std::atomic<bool>>(false);
                      auto a = sys.spawn([](caf::event_based_actor* self) -> caf::behavior {
                        self->quit(caf::make_error(caf::sec::runtime_error, "dies at once"));
                        return {};
                      });
                      a->attach_functor([dead] { *dead = true; });
                      while (!*dead) std::this_thread::sleep_for(1ms);
                      return a;  // already terminated when the supervisor links it
                    },
                    restart_type::permanent};
  auto sup = spawn_sup(flags(restart_strategy::one_for_one, 2, 5000ms), {doomed});
  auto reason = down_reason(sup);
  REQUIRE(reason);
  CHECK(is_berth_error(*reason, berth::errc::restart_intensity));
  CHECK(p->starts_of("doomed") == 3);
}

TEST_CASE_METHOD(fixture, "supervisor: start failures", "[supervisor]") {
  auto throwing = [](std::string id) {
    return child_spec{id, [](caf::actor_system&) -> caf::actor {
                        throw std::runtime_error("cannot start");
                      }};
  };
  SECTION("a static child that cannot start fails the supervisor") {
    auto sup = spawn_sup(default_flags, {worker(p, "ok"), throwing("bad")});
    auto reason = down_reason(sup);
    REQUIRE(reason);
    CHECK(is_berth_error(*reason, berth::errc::internal));
    CHECK(eventually([&] { return p->exit_count() == 1; }));  // "ok" was stopped
  }
  SECTION("also when it is the first child") {
    auto sup = spawn_sup(default_flags, {throwing("bad"), worker(p, "never")});
    auto reason = down_reason(sup);
    REQUIRE(reason);
    CHECK(is_berth_error(*reason, berth::errc::internal));
    CHECK(p->starts_of("never") == 0);
  }
  SECTION("a dynamic child that cannot start is an error reply") {
    auto sup = spawn_sup(default_flags, {});
    auto res = ask<caf::actor>(sup, berth::start_child_atom::value, throwing("bad"));
    REQUIRE_FALSE(res);
    CHECK(is_berth_error(res.error(), berth::errc::internal));
    CHECK(children(sup).empty());
    CHECK_FALSE(down_reason(sup, 0ms));
  }
}

TEST_CASE_METHOD(fixture, "supervisor: escalation goes up the tree", "[supervisor]") {
  child_spec inner{"inner", [p = p](caf::actor_system& sys) {
                     p->record_start("inner");
                     return sys.spawn(berth::supervisor,
                                      flags(restart_strategy::one_for_one, 1, 5000ms),
                                      std::vector<child_spec>{worker(p, "w")});
                   }};
  auto outer = spawn_sup(default_flags, {inner, worker(p, "x")});
  auto x = which(outer, "x");
  auto inner1 = which(outer, "inner");
  REQUIRE((x && inner1));
  auto w1 = which(inner1, "w");
  REQUIRE(w1);

  auto w2 = crash_and_wait_restart(inner1, "w");  // inner handles this one
  CHECK(restarts(inner1) == 1);
  CHECK(restarts(outer) == 0);

  caf::anon_send(w2, berth::crash_atom::value);  // second: inner escalates
  auto r = down_reason(inner1);
  REQUIRE(r);
  CHECK(is_berth_error(*r, berth::errc::restart_intensity));

  caf::actor inner2;
  REQUIRE(eventually([&] {
    inner2 = which(outer, "inner");
    return inner2 && inner2 != inner1;
  }));
  CHECK(restarts(outer) == 1);
  CHECK(restarts(inner2) == 0);  // a fresh supervisor
  auto w3 = which(inner2, "w");
  REQUIRE(w3);
  CHECK(ping(w3) == 3);
  CHECK(p->starts_of("inner") == 2);
  CHECK(which(outer, "x") == x);  // one_for_one at the top

  // Shutting the top down takes the whole tree with it.
  caf::anon_send_exit(outer, caf::exit_reason::user_shutdown);
  auto ro = down_reason(outer);
  REQUIRE(ro);
  CHECK(*ro == caf::exit_reason::user_shutdown);
  CHECK(down_reason(inner2, 0ms));
  CHECK(down_reason(w3, 0ms));
  CHECK(down_reason(x, 0ms));
}

TEST_CASE_METHOD(fixture, "supervisor: dynamic children", "[supervisor]") {
  auto sup = spawn_sup(default_flags, {worker(p, "static")});
  auto d1 = ask<caf::actor>(sup, berth::start_child_atom::value, worker(p, "d1"));
  REQUIRE(d1);
  CHECK(*d1 == which(sup, "d1"));
  CHECK(ping(*d1) == 1);

  auto dup = ask<caf::actor>(sup, berth::start_child_atom::value, worker(p, "d1"));
  REQUIRE_FALSE(dup);
  CHECK(is_berth_error(dup.error(), berth::errc::already_exists));
  CHECK(p->starts_of("d1") == 1);  // the duplicate was not even started

  auto d2 = ask<caf::actor>(sup, berth::start_child_atom::value, worker(p, "d2"));
  REQUIRE(d2);
  CHECK(children(sup) == std::vector<std::string>{"static", "d1", "d2"});

  // A dynamic permanent child is restarted like a static one.
  auto d2b = crash_and_wait_restart(sup, "d2");
  CHECK(ping(d2b) == 2);

  // terminate_child replies once the child is gone, and it is not restarted.
  auto exits0 = p->exit_count();
  auto term = ask<bool>(sup, berth::terminate_child_atom::value, std::string{"d1"});
  REQUIRE(term);
  CHECK(*term);
  CHECK(p->exits_from(exits0) == std::vector<std::string>{"d1"});
  auto rd = down_reason(*d1, 500ms);
  REQUIRE(rd);
  CHECK(*rd == caf::exit_reason::user_shutdown);
  std::this_thread::sleep_for(100ms);
  CHECK(p->starts_of("d1") == 1);
  CHECK_FALSE(which(sup, "d1"));
  CHECK(children(sup) == std::vector<std::string>{"static", "d2"});
  CHECK(restarts(sup) == 1);

  auto none = ask<bool>(sup, berth::terminate_child_atom::value, std::string{"nope"});
  REQUIRE(none);
  CHECK_FALSE(*none);

  // The id is free again.
  auto d1b = ask<caf::actor>(sup, berth::start_child_atom::value, worker(p, "d1"));
  REQUIRE(d1b);
  CHECK(children(sup) == std::vector<std::string>{"static", "d2", "d1"});
}

TEST_CASE_METHOD(fixture, "supervisor: shutdown stops children in reverse order and the "
                          "system terminates",
                 "[supervisor]") {
  auto sup = spawn_sup(default_flags, {worker(p, "a"), worker(p, "b"), worker(p, "c")});
  auto a = which(sup, "a");
  auto b = which(sup, "b");
  auto c = which(sup, "c");
  REQUIRE((a && b && c));
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  auto r = down_reason(sup);
  REQUIRE(r);
  CHECK(*r == caf::exit_reason::user_shutdown);
  CHECK(p->exits_from(0) == std::vector<std::string>{"c", "b", "a"});
  for (auto& child : {a, b, c}) {
    auto rc = down_reason(child, 0ms);
    REQUIRE(rc);
    CHECK(*rc == caf::exit_reason::user_shutdown);
  }
  CHECK(p->start_count() == 3);  // nothing restarted during shutdown
  // All scoped actors of the helpers are gone: nothing may keep the system alive.
  REQUIRE(eventually([&] { return sys.registry().running() == 0; }, 2000ms));
  sys.await_all_actors_done();
}

namespace {

// An actor that IS a supervisor and has its own handlers.
struct custom_state {
  berth::supervisor_core sup;
  int pings = 0;
};

caf::behavior custom_supervisor(caf::stateful_actor<custom_state>* self,
                                std::vector<child_spec> specs) {
  self->state.sup.set_shutdown_timeout(200ms);
  self->state.sup.init(self, flags(restart_strategy::one_for_one, 3, 5000ms), std::move(specs));
  return berth::supervisor_handlers(self, self->state.sup)
      .or_else([=](berth::ping_atom) { return ++self->state.pings; });
}

// Traps exits and ignores them: only exit_reason::kill stops it.
caf::behavior stubborn(caf::event_based_actor* self) {
  self->set_exit_handler([](caf::exit_msg&) {});
  return {[](berth::ping_atom) { return 0; }};
}

}  // namespace

TEST_CASE_METHOD(fixture, "supervisor: core embedded in another actor, stubborn children "
                          "are killed after the shutdown timeout",
                 "[supervisor]") {
  child_spec stub{"stubborn", [](caf::actor_system& sys) { return sys.spawn(stubborn); }};
  auto sup = sys.spawn(custom_supervisor, std::vector<child_spec>{worker(p, "a"), stub});
  owned.push_back(sup);
  CHECK(ping(sup) == 1);  // own handler
  CHECK(ping(sup) == 2);
  CHECK(children(sup) == std::vector<std::string>{"a", "stubborn"});  // supervision handlers
  crash_and_wait_restart(sup, "a");
  CHECK(restarts(sup) == 1);

  auto s = which(sup, "stubborn");
  auto a = which(sup, "a");
  REQUIRE((s && a));
  auto t0 = std::chrono::steady_clock::now();
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  auto r = down_reason(sup);
  REQUIRE(r);
  CHECK(*r == caf::exit_reason::user_shutdown);
  CHECK(std::chrono::steady_clock::now() - t0 >= 150ms);
  auto rs = down_reason(s, 0ms);
  REQUIRE(rs);
  CHECK(*rs == caf::exit_reason::kill);
  CHECK(down_reason(a, 0ms));
}
