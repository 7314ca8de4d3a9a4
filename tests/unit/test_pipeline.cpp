// The deploy pipeline (runtime/pipeline/deploy.hpp) driven through a fake deploy_host, with the
// real process runtime on a tiny python app (tests/unit/pipeline_support.hpp). Every wait is
// bounded; nothing asserts on a duration.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "messages/instance.hpp"
#include "runtime/release/release.hpp"
#include "tests/unit/pipeline_support.hpp"

using namespace berth;
using namespace berth::test;
namespace fs = std::filesystem;

namespace {

using strings = std::vector<std::string>;

const strings whole_deploy = {"preparing", "building", "packaging", "starting",
                              "health_checking", "switching", "draining", "completed"};

strings types_of(const recorded_batch& b) {
  strings out;
  for (auto& e : b.events) out.push_back(e.type);
  return out;
}

bool contains(const strings& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

size_t position(const strings& v, const std::string& s) {
  return static_cast<size_t>(std::find(v.begin(), v.end(), s) - v.begin());
}

std::string hash_of(const fake_host& h) { return h.deployment().resources.value("hash", ""); }

// The instance release_activated names (empty when none was recorded).
instance_ref activated(const fake_host& h) {
  auto data = h.first(ev::release_activated);
  return data ? instance_from(*data) : instance_ref{};
}

// The candidate's pid, from the resources of the health_checking event.
int candidate_pid(const fake_host& h) {
  auto data = h.first(event_type(phase::health_checking));
  if (!data) return 0;
  return data->value("resources", nlohmann::json::object()).value("candidate", nlohmann::json::object()).value("pid", 0);
}

std::string port_op(const char* verb, uint16_t port) { return std::string(verb) + " " + std::to_string(port); }

// What a first deploy that failed after packaging must have undone: nothing of it runs, its
// port is given back, its release folder is gone and the folded log does not keep it.
void check_compensated(const pipeline_fixture& f, const fake_host& h) {
  auto hash = hash_of(h);
  REQUIRE(!hash.empty());
  CHECK(f.running().empty());
  REQUIRE(candidate_pid(h) > 0);
  CHECK(eventually([&] { return !pid_alive(candidate_pid(h)); }));
  REQUIRE(h.leased().size() == 1);
  CHECK(h.released() == h.leased());
  CHECK_FALSE(fs::exists(f.paths.production / hash));
  CHECK(read_current(f.paths.production).empty());
  // A recorded release_packaged is followed by release_removed; an unrecorded one by nothing.
  auto types = h.types();
  CHECK(h.count(ev::release_packaged) <= 1);
  CHECK(h.count(ev::release_removed) == h.count(ev::release_packaged));
  if (h.count(ev::release_packaged) == 1)
    CHECK(position(types, ev::release_packaged) < position(types, ev::release_removed));
  CHECK(h.folded().releases.count(hash) == 0);
  CHECK_FALSE(fs::exists(f.paths.build_workspace(h.id())));
}

// Sets `why` on the host once the candidate answered a health probe (it is then waiting).
std::thread stop_once_probed(const pipeline_fixture& f, fake_host& h, stop_request why) {
  auto log = f.probe_log();
  return std::thread([log, &h, why] {
    eventually([&] { return !read_file(log).empty(); }, 30000ms);
    h.request_stop(why);
  });
}

}  // namespace

TEST_CASE_METHOD(pipeline_fixture, "pipeline: a first direct deploy records every phase and serves the stable port",
                 "[pipeline]") {
  phase end;
  auto h = deploy({"v1"}, &end);
  REQUIRE(end == phase::completed);
  CHECK(h->phases() == whole_deploy);

  // Durable: the activation, riding with the draining boundary (release_packaged at most
  // before it), then the outcome; every other phase event is not.
  auto batches = h->batches();
  std::vector<size_t> durable;
  for (size_t i = 0; i < batches.size(); ++i)
    if (batches[i].durable) durable.push_back(i);
  REQUIRE(durable.size() == 2);
  auto activation = types_of(batches[durable[0]]);
  REQUIRE(activation.size() >= 2);
  CHECK(activation[activation.size() - 2] == ev::release_activated);
  CHECK(activation.back() == event_type(phase::draining));
  for (size_t i = 0; i + 2 < activation.size(); ++i) CHECK(activation[i] == ev::release_packaged);
  CHECK(durable[1] == batches.size() - 1);
  CHECK(batches.back().events.back().type == event_type(phase::completed));
  for (size_t i = 0; i < durable[0]; ++i) CHECK_FALSE(batches[i].durable);

  // release_packaged is recorded once, before release_activated, riding with a later event.
  CHECK(h->count(ev::release_packaged) == 1);
  auto all = h->types();
  CHECK(position(all, ev::release_packaged) < position(all, ev::release_activated));
  auto with_packaged = std::find_if(batches.begin(), batches.end(),
                                    [](auto& b) { return contains(types_of(b), ev::release_packaged); });
  REQUIRE(with_packaged != batches.end());
  auto types = types_of(*with_packaged);
  CHECK(position(types, ev::release_packaged) + 1 < types.size());

  auto hash = hash_of(*h);
  CHECK(valid_release_hash(hash));
  CHECK(read_current(paths.production) == hash);
  CHECK(production.current == hash);
  CHECK(production.status == "running");

  auto live = activated(*h);
  CHECK(live.port == stable_port);
  CHECK(driver->inspect(live).running());
  CHECK(http_get(stable_port) == std::optional<std::string>("v1"));
  CHECK(running() == std::vector<instance_ref>{live});

  // The candidate stopped and its port went back.
  REQUIRE(h->leased().size() == 1);
  CHECK(h->leased()[0] != stable_port);
  CHECK(h->released() == h->leased());
  REQUIRE(candidate_pid(*h) > 0);
  CHECK(candidate_pid(*h) != live.pid);
  CHECK(eventually([&] { return !pid_alive(candidate_pid(*h)); }));
  CHECK_FALSE(fs::exists(paths.build_workspace(h->id())));
}

TEST_CASE_METHOD(pipeline_fixture, "pipeline: a direct deploy over a serving release replaces it on the stable port",
                 "[pipeline]") {
  phase end;
  auto first = deploy({"v1"}, &end);
  REQUIRE(end == phase::completed);
  auto old = activated(*first);

  auto second = deploy({"v2"}, &end);
  REQUIRE(end == phase::completed);
  CHECK(contains(second->ops(), "serving"));
  CHECK_FALSE(driver->inspect(old).running());
  auto live = activated(*second);
  CHECK(live != old);
  CHECK(live.port == stable_port);
  CHECK(http_get(stable_port) == std::optional<std::string>("v2"));
  CHECK(running() == std::vector<instance_ref>{live});
  CHECK(read_current(paths.production) == hash_of(*second));

  auto resources = second->deployment().resources;
  CHECK(resources.value("previous", "") == hash_of(*first));
  REQUIRE(resources.contains("gap_ms"));
  REQUIRE(resources.contains("gap_us"));
  CHECK(resources["gap_ms"].is_number_integer());
  CHECK(resources["gap_us"].get<int64_t>() >= 0);
  CHECK(second->first(ev::release_activated)->value("previous", "") == hash_of(*first));
}

TEST_CASE_METHOD(pipeline_fixture, "pipeline: a build that fails starts nothing and leaves no release", "[pipeline]") {
  spec.build_command = {"sh", "-c", "echo compiling; echo broken >&2; exit 7"};
  phase end;
  auto h = deploy({"v1"}, &end);
  CHECK(end == phase::failed);
  auto d = h->deployment();
  CHECK(d.error.code == "build_failed");
  CHECK(d.error.phase == "building");
  CHECK_THAT(d.error.message, Catch::Contains("code 7"));
  CHECK(h->phases() == strings{"preparing", "building", "rolling_back", "failed"});
  CHECK(h->batches().back().durable);
  CHECK(h->leased().empty());
  CHECK(h->released().empty());
  CHECK(running().empty());
  CHECK(driver->list({project, "", ""}).empty());
  CHECK_FALSE(fs::exists(paths.build_workspace(h->id())));
  CHECK(release_dirs().empty());
  CHECK(h->count(ev::release_packaged) == 0);
}

TEST_CASE_METHOD(pipeline_fixture, "pipeline: a candidate that never gets healthy is stopped and its release removed",
                 "[pipeline]") {
  spec.production_health.timeout_s = 1;
  app_options o{"v1"};
  SECTION("it answers 500") { o.mode = "health-500"; }
  SECTION("it exits at start") { o.mode = "crash"; }
  phase end;
  auto h = deploy(o, &end);
  CHECK(end == phase::failed);
  auto d = h->deployment();
  CHECK(d.error.code == "health_check_failed");
  CHECK(d.error.phase == "health_checking");
  CHECK(h->phases() == strings{"preparing", "building", "packaging", "starting", "health_checking", "rolling_back",
                               "failed"});
  CHECK(candidate_pid(*h) > 0);
  check_compensated(*this, *h);
  CHECK(release_dirs().empty());
  CHECK(h->batches().back().durable);
}

// source_steps.cpp: a new release is recorded (release_packaged) only when it is activated; a
// deploy that ends before that removes its folder and records neither release_packaged nor
// release_removed.
TEST_CASE_METHOD(pipeline_fixture, "pipeline: a deploy stopped right after packaging records nothing of its release",
                 "[pipeline]") {
  auto in = inputs({"v1"});
  auto h = host();
  auto& hr = *h;
  hr.on_event = [&hr](const new_event& e) {
    if (e.type == event_type(phase::packaging)) hr.request_stop(stop_request::cancel);
  };
  auto end = run(*h, in);
  CHECK(end == phase::cancelled);
  CHECK(h->deployment().error.code == "cancelled");
  CHECK(h->phases() == strings{"preparing", "building", "packaging", "rolling_back", "cancelled"});
  CHECK(h->leased().empty());
  CHECK(running().empty());
  auto hash = hash_of(*h);
  REQUIRE(!hash.empty());
  CHECK(release_dirs().empty());
  CHECK(h->count(ev::release_packaged) == 0);
  CHECK(h->count(ev::release_removed) == 0);
  CHECK(h->folded().releases.count(hash) == 0);
}

TEST_CASE_METHOD(pipeline_fixture, "pipeline: a cancel during the health check ends the deploy cancelled, undone",
                 "[pipeline]") {
  spec.production_health.timeout_s = 120;  // only the cancel ends this wait in time
  auto in = inputs({"v1", "health-500"});
  auto h = host();
  auto canceller = stop_once_probed(*this, *h, stop_request::cancel);
  auto end = run_within(*h, in, 60000ms);
  canceller.join();
  REQUIRE(end.has_value());  // it ended promptly
  CHECK(*end == phase::cancelled);
  auto d = h->deployment();
  CHECK(d.current == phase::cancelled);
  CHECK(d.error.code == "cancelled");
  CHECK(d.error.phase == "health_checking");
  CHECK(h->phases() == strings{"preparing", "building", "packaging", "starting", "health_checking", "rolling_back",
                               "cancelled"});
  CHECK(h->batches().back().durable);
  check_compensated(*this, *h);
}

TEST_CASE_METHOD(pipeline_fixture, "pipeline: an abandoned deploy records nothing more and undoes nothing",
                 "[pipeline]") {
  spec.production_health.timeout_s = 120;
  auto in = inputs({"v1", "health-500"});
  auto h = host();
  auto abandon = stop_once_probed(*this, *h, stop_request::abandoned);
  auto end = run_within(*h, in, 60000ms);
  abandon.join();
  REQUIRE(end.has_value());
  CHECK(*end == phase::failed);
  // Nothing after the phase it was in: no rolling_back, no outcome.
  CHECK(h->types().back() == event_type(phase::health_checking));
  CHECK(h->phases().back() == "health_checking");
  CHECK(h->count(ev::release_removed) == 0);
  CHECK(h->released().empty());
  auto hash = hash_of(*h);
  CHECK(fs::is_directory(paths.production / hash));

  // The candidate is left for the owner's successor: still there; the test sweeps it.
  auto left = running();
  REQUIRE(left.size() == 1);
  CHECK(left[0].pid == candidate_pid(*h));
  CHECK(driver->stop(left[0], 1000ms).is_ok());
  CHECK_FALSE(driver->inspect(left[0]).running());
}

TEST_CASE_METHOD(pipeline_fixture, "pipeline: a shutdown ends the deploy interrupted at the next phase boundary",
                 "[pipeline]") {
  auto in = inputs({"v1"});
  auto h = host();
  auto& hr = *h;
  hr.on_event = [&hr](const new_event& e) {
    if (e.type == event_type(phase::health_checking)) hr.request_stop(stop_request::shutdown);
  };
  auto end = run(*h, in);
  CHECK(end == phase::failed);
  auto d = h->deployment();
  CHECK(d.error.code == "interrupted");
  // The health check was not cut short (the candidate was found healthy); the switch never began.
  CHECK(d.resources.contains("candidate_boot_ms"));
  CHECK(h->phases() == strings{"preparing", "building", "packaging", "starting", "health_checking", "rolling_back",
                               "failed"});
  CHECK_FALSE(contains(h->ops(), "serving"));
  CHECK(h->batches().back().durable);
  check_compensated(*this, *h);
}

TEST_CASE_METHOD(pipeline_fixture, "pipeline: the same source again without force is unchanged", "[pipeline]") {
  phase end;
  auto first = deploy({"v1"}, &end);
  REQUIRE(end == phase::completed);
  auto live = activated(*first);
  auto hash = hash_of(*first);

  auto again = deploy({"v1"}, &end);
  CHECK(end == phase::unchanged);
  CHECK(hash_of(*again) == hash);
  CHECK(again->phases() == strings{"preparing", "building", "packaging", "unchanged"});
  CHECK(again->batches().back().durable);
  CHECK(again->leased().empty());
  CHECK_FALSE(contains(again->ops(), "serving"));
  CHECK(again->count(ev::release_packaged) == 0);
  CHECK(again->count(ev::release_activated) == 0);
  CHECK(running() == std::vector<instance_ref>{live});
  CHECK(read_current(paths.production) == hash);
  CHECK(release_dirs() == strings{hash});
  CHECK_FALSE(fs::exists(paths.build_workspace(again->id())));
}

TEST_CASE_METHOD(pipeline_fixture, "pipeline: a rollback starts the kept release without building", "[pipeline]") {
  phase end;
  auto v1 = deploy({"v1"}, &end);
  REQUIRE(end == phase::completed);
  auto v2 = deploy({"v2"}, &end);
  REQUIRE(end == phase::completed);
  auto v2_live = activated(*v2);

  auto in = rollback_to(hash_of(*v1));
  auto h = host();
  CHECK(run(*h, in) == phase::completed);
  CHECK(h->phases() == strings{"starting", "health_checking", "switching", "draining", "completed"});
  auto activated_data = h->first(ev::release_activated);
  REQUIRE(activated_data);
  CHECK(activated_data->value("kind", "") == "rollback");
  CHECK(activated_data->value("hash", "") == hash_of(*v1));
  CHECK(activated_data->value("previous", "") == hash_of(*v2));
  CHECK(read_current(paths.production) == hash_of(*v1));
  CHECK_FALSE(driver->inspect(v2_live).running());
  CHECK(http_get(stable_port) == std::optional<std::string>("v1"));
  CHECK(running() == std::vector<instance_ref>{activated(*h)});
}

TEST_CASE_METHOD(pipeline_fixture, "pipeline: a first proxy deploy whose route fails takes the route away first",
                 "[pipeline]") {
  auto in = inputs({"v1"});
  in.proxy = true;
  auto h = host();
  h->set_route_result(status::io_error("caddy did not take the route"));
  auto end = run(*h, in);
  CHECK(end == phase::failed);
  auto code = h->deployment().error.code;
  CHECK((code == "switch_failed" || code == "backend_unavailable"));
  REQUIRE(h->leased().size() == 1);
  auto candidate = h->leased()[0];
  auto ops = h->ops();
  auto asked = index_of(ops, port_op("route", candidate));
  auto taken_away = index_of(ops, "route 0");
  auto given_back = index_of(ops, port_op("release", candidate));
  CHECK(asked < taken_away);
  CHECK(taken_away < given_back);  // no route to a port berth gave back
  CHECK(given_back < ops.size());
  CHECK(h->count(ev::release_activated) == 0);
  check_compensated(*this, *h);
}

TEST_CASE_METHOD(pipeline_fixture, "pipeline: a proxy deploy moves the route and drains the old release",
                 "[pipeline]") {
  auto in1 = inputs({"v1"});
  in1.proxy = true;
  auto first = host();
  REQUIRE(run(*first, in1) == phase::completed);
  REQUIRE(first->leased().size() == 1);
  auto old_port = first->leased()[0];
  auto old = activated(*first);
  CHECK(old.port == old_port);
  CHECK(first->released().empty());  // the candidate kept its port: it is the release
  CHECK(http_get(old_port) == std::optional<std::string>("v1"));

  auto in2 = inputs({"v2"});
  in2.proxy = true;
  in2.drain = 200ms;
  auto second = host();
  REQUIRE(run(*second, in2) == phase::completed);
  REQUIRE(second->leased().size() == 1);
  auto new_port = second->leased()[0];
  auto ops = second->ops();
  std::vector<std::string> routes;
  std::copy_if(ops.begin(), ops.end(), std::back_inserter(routes), [](auto& op) { return op.rfind("route ", 0) == 0; });
  CHECK(routes == strings{port_op("route", new_port)});
  CHECK(second->released() == std::vector<uint16_t>{old_port});
  CHECK(index_of(ops, port_op("route", new_port)) < index_of(ops, port_op("release", old_port)));
  CHECK_FALSE(driver->inspect(old).running());

  auto live = activated(*second);
  CHECK(live.port == new_port);
  CHECK(live.pid == candidate_pid(*second));
  CHECK(driver->inspect(live).running());
  CHECK(http_get(new_port) == std::optional<std::string>("v2"));
  CHECK(running() == std::vector<instance_ref>{live});
  CHECK(second->deployment().resources.value("gap_ms", -1) == 0);
  CHECK(read_current(paths.production) == hash_of(*second));
}

TEST_CASE_METHOD(pipeline_fixture,
                 "pipeline: a new release that does not come up on the stable port brings the old one back",
                 "[pipeline]") {
  phase end;
  auto v1 = deploy({"v1"}, &end);
  REQUIRE(end == phase::completed);
  auto old = activated(*v1);

  app_options o{"v2"};
  o.crash_on_port = stable_port;  // healthy as a candidate, exits 3 on the stable port
  auto h = deploy(o, &end);
  CHECK(end == phase::failed);
  auto d = h->deployment();
  CHECK(d.error.code == "switch_failed");
  CHECK(d.error.phase == "switching");
  CHECK_FALSE(driver->inspect(old).running());  // it was stopped for the switch ...
  auto restored = h->last(ev::production_started);
  REQUIRE(restored);  // ... and started again
  CHECK(restored->value("cause", "") == "restored");
  CHECK(restored->value("hash", "") == hash_of(*v1));
  auto back = instance_from(*restored);
  CHECK(back.port == stable_port);
  CHECK(driver->inspect(back).running());
  CHECK(http_get(stable_port) == std::optional<std::string>("v1"));
  CHECK(production.status == "running");
  CHECK(production.process == back);
  CHECK(production.current == hash_of(*v1));
  CHECK(read_current(paths.production) == hash_of(*v1));
  CHECK(running() == std::vector<instance_ref>{back});
  CHECK(h->released() == h->leased());
  CHECK_FALSE(fs::exists(paths.production / hash_of(*h)));
  CHECK(h->count(ev::release_removed) == h->count(ev::release_packaged));
  CHECK(production.releases.count(hash_of(*h)) == 0);
}

TEST_CASE_METHOD(pipeline_fixture, "pipeline: retention prunes the releases it no longer keeps", "[pipeline]") {
  phase end;
  auto v1 = deploy({"v1"}, &end);
  REQUIRE(end == phase::completed);
  auto old = hash_of(*v1);
  REQUIRE(production.releases.count(old) == 1);

  spec.keep = 1;
  auto v2 = deploy({"v2"}, &end);
  REQUIRE(end == phase::completed);
  auto last = v2->batches().back();
  CHECK(last.durable);
  auto types = types_of(last);
  CHECK(types.back() == event_type(phase::completed));
  REQUIRE(contains(types, ev::release_pruned));
  CHECK(v2->count(ev::release_pruned) == 1);
  CHECK(v2->first(ev::release_pruned)->value("hash", "") == old);
  CHECK_FALSE(fs::exists(paths.production / old));
  CHECK(release_dirs() == strings{hash_of(*v2)});
  CHECK(production.releases.count(old) == 0);
  CHECK(production.releases.count(hash_of(*v2)) == 1);
}

// ---- found while writing these (see the report) ----

// A cancel that arrives once the direct switch has begun makes the new release's start on the
// stable port give up; the undo then starts the old release again with the same give_up, so
// it gives up too: production is left down.
TEST_CASE_METHOD(pipeline_fixture, "pipeline: a cancel during the direct switch leaves production serving",
                 "[pipeline]") {
  phase end;
  auto v1 = deploy({"v1"}, &end);
  REQUIRE(end == phase::completed);
  auto in = inputs({"v2"});
  auto h = host();
  auto& hr = *h;
  hr.on_event = [&hr](const new_event& e) {
    if (e.type == event_type(phase::switching)) hr.request_stop(stop_request::cancel);
  };
  end = run(*h, in);
  INFO("ended " << to_string(end) << ": " << h->deployment().error.code << ": " << h->deployment().error.message);
  {
    INFO("deploy log:\n" << read_file(paths.deployment_log(h->id())));
    CHECK(http_get(stable_port).has_value());
  }
  CHECK(running().size() == 1);
  CHECK(production.status == "running");
}

// A first deploy whose activation the log refuses (it rides in the draining boundary's synced
// batch) is rolled back whole: no production/current, no process, no release folder.
TEST_CASE_METHOD(pipeline_fixture, "pipeline: a refused activation leaves no production/current behind",
                 "[pipeline]") {
  auto in = inputs({"v1"});
  auto h = host();
  h->refuse_batches_with(ev::release_activated);
  CHECK(run(*h, in) == phase::failed);
  CHECK(h->count(ev::release_activated) == 0);
  CHECK(running().empty());
  CHECK(read_current(paths.production).empty());
  CHECK(release_dirs().empty());
}
