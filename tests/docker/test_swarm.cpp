// The swarm driver against a real single-node swarm and the local registry: releases as
// updates of one service, start-first on a port per release, rollback, removal.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <httplib.h>

#include "runtime/docker/images.hpp"
#include "runtime/docker/swarm_runtime.hpp"
#include "runtime/docker/swarm_spec.hpp"
#include "runtime/docker/swarm_state.hpp"
#include "tests/docker/docker_test_support.hpp"

using namespace berth;
using namespace berth::dk;
using namespace std::chrono_literals;

namespace {

// busybox httpd that ends on SIGTERM (as PID 1 it would ignore it) and says which release it is.
std::vector<std::string> sw_httpd() { return {"sh", "-c", "trap 'exit 0' TERM; httpd -f -p $PORT -h /app & wait"}; }

instance_spec release(const std::string& project, const std::string& hash, const std::filesystem::path& folder,
                      uint16_t port, const std::filesystem::path& log) {
  instance_spec s;
  s.labels = {project, "production", hash, "swarm"};
  s.from = artifact{folder.string()};
  s.command = sw_httpd();
  s.env = {{"PORT", std::to_string(port)}, {"HOST", "127.0.0.1"}, {"BERTH_RELEASE", hash}};
  s.port = port;
  s.log = log;
  s.container.base = it::test_base_image();
  s.container.healthcheck = {"sh", "-c", "wget -q -O /dev/null http://127.0.0.1:$PORT/"};
  return s;
}

bool service_exists(docker_engine& engine, const std::string& project) {
  engine_reply r;
  REQUIRE(engine.call("GET", "/services/" + swarm::service_name(project), nullptr, &r).is_ok());
  return r.ok();
}


// Once: GET / on the port ("" when nothing answers).
std::string once(uint16_t port) { return http_get(port, "/", 1); }

// Whether GET / on the port says `body` within 30 s (a published port may take connections
// and answer nothing while its task is not up: each try is bounded, and so is the wait).
bool answers(uint16_t port, const std::string& body) {
  return eventually([&] { return once(port) == body; }, 30s);
}

// Removes the project's service and images whatever the test did.
struct swarm_cleanup {
  runtime_driver& driver;
  std::string project;
  ~swarm_cleanup() { driver.remove_project(project); }
};

}  // namespace

TEST_CASE("swarm: prepare pushes, releases are start-first updates, stop rolls back, delete removes",
          "[docker][swarm]") {
  DOCKER_OR_SKIP();
  auto engine = test_engine();
  scratch s("sw");
  auto project = "sw-drv-" + std::to_string(::getpid() % 100000);
  auto driver = make_swarm_runtime(engine, {s.dir.string(), it::test_registry(), {}});
  swarm_cleanup cleanup{*driver, project};
  write_httpd_release(s.dir / "r1", "release one");
  write_httpd_release(s.dir / "r2", "release two");
  auto log = s.dir / "production.log";
  auto p1 = free_port(), p2 = free_port();
  auto v1 = release(project, "aaaaaaaaaaa1", s.dir / "r1", p1, log);
  auto v2 = release(project, "aaaaaaaaaaa2", s.dir / "r2", p2, log);

  // prepare: built, pushed; the registry lists the tag.
  std::vector<std::string> out;
  auto sink = [&](const std::string& l) { out.push_back(l); };
  artifact a;
  REQUIRE(driver->prepare(v1, sink, {}, &a).is_ok());
  CHECK(a.id == it::test_registry() + "/berth/" + project + ":aaaaaaaaaaa1");
  auto where = it::test_registry();  // host:port
  httplib::Client registry(where.substr(0, where.rfind(':')), std::stoi(where.substr(where.rfind(':') + 1)));
  auto tags = registry.Get(("/v2/berth/" + project + "/tags/list").c_str());
  REQUIRE(tags);
  CHECK(tags->body.find("aaaaaaaaaaa1") != std::string::npos);
  // Again (a rollback's prepare): neither rebuilt nor pushed.
  out.clear();
  REQUIRE(driver->prepare(v1, sink, {}, &a).is_ok());
  REQUIRE(out.size() == 2);
  CHECK(out[0].find("not rebuilt") != std::string::npos);
  CHECK(out[1].find("not pushed") != std::string::npos);
  REQUIRE(driver->prepare(v2, sink, {}, &a).is_ok());

  // start: the service is made and the release answers on its port.
  instance_ref r1, r2;
  REQUIRE(driver->start(v1, &r1).is_ok());
  CHECK(r1.id.rfind("swarm:", 0) == 0);
  CHECK(r1.port == p1);
  CHECK(service_exists(*engine, project));
  CHECK(answers(p1, "release one"));
  CHECK(driver->inspect(r1).running());
  resource_usage u;
  REQUIRE(driver->usage(r1, &u).is_ok());  // its task's container, on this node
  CHECK(u.processes >= 1);
  CHECK(u.rss_bytes > 0);
  CHECK(u.limits.memory_mb == 0);  // none asked for: none reported
  auto listed = driver->list({project, "", "", ""});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0] == r1);
  CHECK(listed[0].port == p1);
  CHECK(listed[0].project == project);
  CHECK(driver->list({project, "preview", "", ""}).empty());

  // The second release on its own port, start-first: it answers while the first still does.
  REQUIRE(driver->start(v2, &r2).is_ok());
  CHECK(r2.port == p2);
  bool both = false;
  REQUIRE(eventually([&] {
    if (once(p2) != "release two") return false;
    both = once(p1) == "release one";
    return true;
  }, 30s));
  CHECK(both);
  // Then the first one's task goes: nothing of it is left, it was replaced (not a failure).
  CHECK(eventually([&] { return driver->inspect(r1).state == instance_state::gone; }, 30s));
  CHECK(once(p1).empty());
  CHECK(driver->list({project, "", "", ""}).at(0) == r2);

  // Stopping the candidate rolls the service back to the first release, on its port.
  REQUIRE(driver->stop(r2, 3s).is_ok());
  CHECK_FALSE(driver->inspect(r2).running());
  CHECK(once(p2).empty());
  CHECK(answers(p1, "release one"));
  CHECK(driver->inspect(r1).running());

  // Stopping the one that serves, with nothing before it to go back to: the service goes, and
  // its watch hears of it.
  std::atomic<int> fired{0};
  std::atomic<int> state{-1};
  driver->watch(r1, [&](const instance_status& st) {
    state = static_cast<int>(st.state);
    ++fired;
  });
  REQUIRE(driver->stop(r2, 3s).is_ok());  // replaced already: forgets it as a rollback target
  CHECK(driver->inspect(r1).running());
  REQUIRE(driver->stop(r1, 3s).is_ok());
  CHECK_FALSE(service_exists(*engine, project));
  CHECK(once(p1).empty());
  CHECK(driver->usage(r1, &u).which() == status::code::not_found);
  CHECK(eventually([&] { return fired.load() == 1; }, 10s));
  CHECK(state.load() == static_cast<int>(instance_state::gone));

  // A new service for a release again; deleting the project removes it and the images.
  instance_ref again;
  REQUIRE(driver->start(v2, &again).is_ok());
  CHECK(again != r2);  // another service
  CHECK(answers(p2, "release two"));
  // A pruned release: its local image goes; the one that runs keeps its image.
  bool exists = true;
  REQUIRE(driver->remove_artifact({project, "production", "aaaaaaaaaaa1", "swarm"}).is_ok());
  REQUIRE(image_exists(*engine, release_image(project, "aaaaaaaaaaa1"), &exists).is_ok());
  CHECK_FALSE(exists);
  REQUIRE(image_exists(*engine, swarm::registry_image(it::test_registry(), project, "aaaaaaaaaaa1"), &exists).is_ok());
  CHECK_FALSE(exists);
  // Started again without a local image (no prepare: a keeper's restart): pulled from the registry.
  instance_ref pulled;
  auto v1_again = v1;
  v1_again.port = free_port();
  REQUIRE(driver->start(v1_again, &pulled).is_ok());
  CHECK(answers(v1_again.port, "release one"));
  REQUIRE(image_exists(*engine, swarm::registry_image(it::test_registry(), project, "aaaaaaaaaaa1"), &exists).is_ok());
  CHECK(exists);
  REQUIRE(driver->remove_project(project).is_ok());
  CHECK_FALSE(service_exists(*engine, project));
  REQUIRE(image_exists(*engine, swarm::registry_image(it::test_registry(), project, "aaaaaaaaaaa1"), &exists).is_ok());
  CHECK_FALSE(exists);
  CHECK(driver->list({project, "", "", ""}).empty());
  CHECK(driver->remove_project(project).is_ok());  // nothing left: ok
}

TEST_CASE("swarm: an update whose task fails is rolled back by Swarm and reads as exited", "[docker][swarm]") {
  DOCKER_OR_SKIP();
  auto engine = test_engine();
  scratch s("swf");
  auto project = "sw-fail-" + std::to_string(::getpid() % 100000);
  auto driver = make_swarm_runtime(engine, {s.dir.string(), it::test_registry(), {}});
  swarm_cleanup cleanup{*driver, project};
  write_httpd_release(s.dir / "r1", "good");
  write_httpd_release(s.dir / "r2", "bad");
  auto p1 = free_port(), p2 = free_port();
  auto good = release(project, "bbbbbbbbbbb1", s.dir / "r1", p1, s.dir / "log");
  auto bad = release(project, "bbbbbbbbbbb2", s.dir / "r2", p2, s.dir / "log");
  bad.command = {"sh", "-c", "echo sw-bad-release-says-bye; exit 3"};
  // Credentials go with the push and the service (the test registry takes anyone).
  good.container.registry_auth = bad.container.registry_auth = "sw-user:sw-password";
  artifact a;
  REQUIRE(driver->prepare(good, {}, {}, &a).is_ok());
  REQUIRE(driver->prepare(bad, {}, {}, &a).is_ok());
  instance_ref r1, r2;
  REQUIRE(driver->start(good, &r1).is_ok());
  REQUIRE(answers(p1, "good"));
  REQUIRE(driver->start(bad, &r2).is_ok());
  // Swarm rolls the update back (failure_action rollback); the first release keeps serving.
  REQUIRE(eventually([&] { return driver->inspect(r2).state == instance_state::exited; }, 30s));
  CHECK(driver->inspect(r2).exit_code == 3);
  CHECK(once(p1) == "good");
  CHECK(eventually([&] { return driver->inspect(r1).running(); }, 30s));
  // The service's output went to the log file.
  CHECK(eventually([&] {
    auto lines = driver->logs(bad, r2, 50);
    for (auto& l : lines)
      if (l.find("sw-bad-release-says-bye") != std::string::npos) return true;
    return false;
  }, 10s));
  // A watch of an instance that failed already fires at once.
  int fired = 0;
  driver->watch(r2, [&](const instance_status& st) { fired += st.state == instance_state::exited; });
  CHECK(fired == 1);
}

TEST_CASE("swarm: bad input and an engine that is down", "[docker][swarm]") {
  scratch s("swbad");
  auto down = make_swarm_runtime(std::make_shared<docker_engine>("unix://" + (s.dir / "no.sock").string()),
                                 {s.dir.string(), "127.0.0.1:5000", {}});
  write_httpd_release(s.dir / "r", "x");
  auto spec = release("sw-bad", "ccccccccccc1", s.dir / "r", 4999, "");
  auto t0 = std::chrono::steady_clock::now();
  instance_ref r;
  CHECK(down->start(spec, &r).which() == status::code::io_error);
  artifact a;
  CHECK(down->prepare(spec, {}, {}, &a).which() == status::code::io_error);
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);
  CHECK(down->list({}).empty());
  CHECK(down->stop({"swarm:nosuch:ccccccccccc1", 4999, 0, ""}, 1s).which() == status::code::io_error);

  auto no_registry = make_swarm_runtime(std::make_shared<docker_engine>(it::test_docker_host()), {s.dir.string(), "", {}});
  auto p = no_registry->prepare(spec, {}, {}, &a);
  CHECK(p.which() == status::code::invalid_argument);
  CHECK(p.message() == "the swarm runtime needs a registry");
  CHECK(no_registry->start(spec, &r).which() == status::code::invalid_argument);
  spec.container.registry = "127.0.0.1:5000";
  spec.labels.release = "";
  CHECK(no_registry->start(spec, &r).which() == status::code::invalid_argument);
  // Not a swarm identity: nothing to do, nothing running.
  CHECK(no_registry->stop({"docker:abc", 1, 0, ""}, 1s).is_ok());
  CHECK(no_registry->inspect({"docker:abc", 1, 0, ""}).state == instance_state::gone);
}

TEST_CASE("swarm: what a service and its tasks say about a release instance", "[docker][swarm][state]") {
  using nlohmann::json;
  auto task = [](const std::string& release, uint16_t port, const std::string& state, const std::string& desired,
                 const std::string& id, int exit_code = 0) {
    return json{{"ID", id},
                {"DesiredState", desired},
                {"Version", {{"Index", 10}}},
                {"Spec", {{"ContainerSpec", {{"Labels", {{"berth.release", release}, {"berth.port", std::to_string(port)}}}}}}},
                {"Status", {{"State", state}, {"ContainerStatus", {{"ExitCode", exit_code}}}}}};
  };
  auto spec_of = [](const std::string& release, uint16_t port) {
    return json{{"TaskTemplate",
                 {{"ContainerSpec", {{"Labels", {{"berth.release", release}, {"berth.port", std::to_string(port)}}}}}}}};
  };
  swarm::instance_key v1{"aaaaaaaaaaa1", 5001}, v2{"aaaaaaaaaaa2", 5002};
  json service = {{"Spec", spec_of(v1.release, v1.port)}};

  // The service runs it and a task is on its way: running. No task yet: running (just made).
  CHECK(swarm::state_of(service, json::array({task(v1.release, 5001, "preparing", "running", "t1")}), v1).status.running());
  CHECK(swarm::state_of(service, json::array(), v1).status.running());
  // The same release on another port is another instance.
  CHECK(swarm::state_of(service, json::array(), {v1.release, 5009}).status.state == instance_state::gone);
  // The service is gone: gone.
  CHECK(swarm::state_of(nullptr, json::array(), v1).status.state == instance_state::gone);
  // Its tasks failed and Swarm gave up: exited with the last one's code.
  auto gave_up = swarm::state_of(service, json::array({task(v1.release, 5001, "failed", "shutdown", "t1", 3)}), v1);
  CHECK(gave_up.status.state == instance_state::exited);
  CHECK(gave_up.status.exit_code == 3);
  // Paused update to it: exited.
  json paused = service;
  paused["UpdateStatus"] = {{"State", "paused"}, {"Message", "update paused due to failure"}};
  CHECK(swarm::state_of(paused, json::array({task(v1.release, 5001, "running", "running", "t1")}), v1).status.state ==
        instance_state::exited);

  // Replaced by v2 (start-first): running while its task still runs, then gone and `replaced`.
  json updated = {{"Spec", spec_of(v2.release, v2.port)}, {"UpdateStatus", {{"State", "completed"}}}};
  CHECK(swarm::state_of(updated, json::array({task(v1.release, 5001, "running", "shutdown", "t1")}), v1).status.running());
  auto replaced = swarm::state_of(updated, json::array({task(v1.release, 5001, "shutdown", "shutdown", "t1")}), v1);
  CHECK(replaced.status.state == instance_state::gone);
  CHECK(replaced.replaced);

  // v2's update rolled back because of a task of v2: v2 exited, v1 runs again.
  json rolled = {{"Spec", spec_of(v1.release, v1.port)},
                 {"UpdateStatus",
                  {{"State", "rollback_completed"},
                   {"Message", "update rolled back due to failure or early termination of task t2"}}}};
  json tasks = json::array({task(v1.release, 5001, "running", "running", "t3"),
                            task(v2.release, 5002, "failed", "shutdown", "t2", 1)});
  auto failed = swarm::state_of(rolled, tasks, v2);
  CHECK(failed.status.state == instance_state::exited);
  CHECK(failed.status.exit_code == 1);
  CHECK(failed.message.find("rolled back") != std::string::npos);
  CHECK(swarm::state_of(rolled, tasks, v1).status.running());
  // A rollback berth asked for (its stop of a candidate) is no failure of the candidate.
  rolled["UpdateStatus"]["Message"] = "manually requested rollback";
  tasks[1] = task(v2.release, 5002, "shutdown", "shutdown", "t2");
  CHECK(swarm::state_of(rolled, tasks, v2).status.state == instance_state::gone);

  // Identities.
  std::string id, release;
  CHECK(swarm::parse_instance_id(swarm::instance_id("svc1", "aaaaaaaaaaa1"), &id, &release));
  CHECK(id == "svc1");
  CHECK(release == "aaaaaaaaaaa1");
  CHECK_FALSE(swarm::parse_instance_id("docker:abc", &id, &release));
  CHECK_FALSE(swarm::parse_instance_id("swarm:onlyservice", &id, &release));
}

TEST_CASE("swarm: the service spec of a release", "[docker][swarm][state]") {
  instance_spec s = release("sw-spec", "aaaaaaaaaaa1", "/nowhere", 5005, "/tmp/x.log");
  s.container.app_port = 8080;
  s.container.replicas = 2;
  s.container.volumes = {{"data", "/var/lib/app"}};
  s.limits = {256, 0.5, 64};
  s.sandbox.id = {2001, 2001};
  auto j = swarm::service_spec(s, "127.0.0.1:5000/berth/sw-spec:aaaaaaaaaaa1", "", "/data");
  auto& cs = j["TaskTemplate"]["ContainerSpec"];
  CHECK(j["Name"] == "berth-sw-spec");
  CHECK(j["Labels"]["berth.data_dir"] == "/data");
  CHECK(cs["User"] == "2001:2001");
  CHECK(cs["CapabilityDrop"] == nlohmann::json::array({"ALL"}));
  auto env = cs["Env"].dump();
  CHECK(env.find("\"PORT=8080\"") != std::string::npos);
  CHECK(env.find("\"HOST=0.0.0.0\"") != std::string::npos);
  CHECK(cs["Healthcheck"]["Test"][0] == "CMD");
  CHECK(cs["Mounts"][0]["Source"] == "berth-sw-spec-data");
  CHECK(j["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"] == int64_t{256} << 20);
  CHECK(j["TaskTemplate"]["Resources"]["Limits"]["NanoCPUs"] == 500000000);
  CHECK(j["TaskTemplate"]["Resources"]["Limits"]["Pids"] == 64);
  CHECK(j["Mode"]["Replicated"]["Replicas"] == 2);
  CHECK(j["UpdateConfig"]["Order"] == "start-first");
  CHECK(j["UpdateConfig"]["FailureAction"] == "rollback");
  auto& port = j["EndpointSpec"]["Ports"][0];
  CHECK(port["TargetPort"] == 8080);
  CHECK(port["PublishedPort"] == 5005);
  CHECK(port["PublishMode"] == "host");
  CHECK(swarm::key_of_spec(j) == swarm::instance_key{"aaaaaaaaaaa1", 5005});
  // The image's own USER wins; without one and without a uid: nobody, never root.
  CHECK(swarm::service_spec(s, "i", "app", "/data")["TaskTemplate"]["ContainerSpec"]["User"] == "app");
  s.sandbox.id = {};
  CHECK(swarm::service_spec(s, "i", "", "/data")["TaskTemplate"]["ContainerSpec"]["User"] == "65534:65534");
}
