// The docker runtime driver against the real engine: images, containers, their confinement,
// limits, volumes, exits, logs and cleanup, as a user of berth would notice them.
#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>

#include "runtime/docker/docker_runtime.hpp"
#include "runtime/docker/images.hpp"
#include "tests/common/support.hpp"
#include "tests/docker/docker_test_support.hpp"

using namespace berth;
using namespace berth::dk;
namespace fs = std::filesystem;

namespace {

struct fixture {
  scratch s;
  std::shared_ptr<docker_engine> engine = test_engine();
  std::shared_ptr<runtime_driver> driver;
  std::string project;
  explicit fixture(const std::string& p) : s(p), project(p) {
    driver = make_docker_runtime(engine, {s.dir.string(), "", {}});
  }
  ~fixture() { driver->remove_project(project); }

  instance_spec release(const std::string& hash, const std::string& body, const std::string& dockerfile = "") {
    auto folder = s.dir / "production" / hash;
    write_httpd_release(folder, body, dockerfile);
    instance_spec spec;
    spec.labels = {project, "production", hash, "docker"};
    spec.from.id = folder.string();
    spec.command = {"sh", "-c", "echo dk-out-" + hash + "; echo dk-err-" + hash + " >&2; exec httpd -f -p $PORT -h /app"};
    spec.port = free_port();
    spec.env = {{"PORT", std::to_string(spec.port)}, {"HOST", "127.0.0.1"}, {"BERTH_RELEASE", hash}};
    spec.log = s.dir / "production.log";
    spec.container.base = it::test_base_image();
    return spec;
  }
  status prepare(const instance_spec& spec, std::vector<std::string>* out = nullptr) {
    std::vector<std::string> lines;
    artifact a;
    auto st = driver->prepare(spec, [&](const std::string& l) { lines.push_back(l); }, [] { return false; }, &a);
    if (out) *out = lines;
    return st;
  }
  nlohmann::json inspect_json(const instance_ref& ref) {
    engine_reply r;
    engine->call("GET", "/containers/" + ref.id.substr(7) + "/json", nullptr, &r);
    return r.body;
  }
};

bool contains(const std::vector<std::string>& lines, const std::string& what) {
  for (auto& l : lines)
    if (l.find(what) != std::string::npos) return true;
  return false;
}


}  // namespace

TEST_CASE("docker: prepare builds once (own and generated Dockerfile), a failing build is the release's",
          "[docker][runtime]") {
  DOCKER_OR_SKIP();
  fixture f("dk-prep");
  std::vector<std::string> out;
  auto gen = f.release("a00000000001", "generated");
  REQUIRE_OK(f.prepare(gen, &out));
  CHECK(contains(out, "Successfully tagged berth/dk-prep:a00000000001"));
  // A rollback starts the kept image: no rebuild.
  REQUIRE_OK(f.prepare(gen, &out));
  CHECK(out == std::vector<std::string>{"image berth/dk-prep:a00000000001 is already built"});

  auto own = f.release("a00000000002", "own",
                       "FROM " + it::test_base_image() + "\nCOPY index.html /srv/\nRUN echo dk-own-step\n"
                       "CMD [\"sh\", \"-c\", \"exec httpd -f -p $PORT -h /srv\"]\n");
  own.command.clear();  // the Dockerfile is the build and names the command
  REQUIRE_OK(f.prepare(own, &out));
  CHECK(contains(out, "dk-own-step"));
  instance_ref ref;
  REQUIRE_OK(f.driver->start(own, &ref));
  CHECK(http_get(own.port) == "own");
  CHECK(f.driver->stop(ref, std::chrono::seconds(1)).is_ok());

  auto failing = f.release("a00000000003", "x", "FROM " + it::test_base_image() + "\nRUN echo dk-before-failing && exit 3\n");
  auto st = f.prepare(failing, &out);
  CHECK(st.which() == status::code::invalid_argument);
  CHECK(st.message().find("returned a non-zero code: 3") != std::string::npos);
  CHECK(contains(out, "dk-before-failing"));
  CHECK(contains(out, "returned a non-zero code: 3"));

  // A cancelled build ends as a transient failure and leaves no image.
  auto cancelled = f.release("a00000000006", "x");
  artifact none;
  auto c = f.driver->prepare(cancelled, {}, [] { return true; }, &none);
  CHECK(c.which() == status::code::io_error);
  bool exists = true;
  REQUIRE_OK(image_exists(*f.engine, "berth/dk-prep:a00000000006", &exists));
  CHECK_FALSE(exists);

  auto no_base = f.release("a00000000004", "x");
  no_base.container.base.clear();
  st = f.prepare(no_base, &out);
  CHECK(st.which() == status::code::invalid_argument);
  CHECK(st.message() == "image.base is required when the release has no Dockerfile");

  auto missing = f.release("a00000000005", "x");
  missing.from.id = (f.s.dir / "nowhere").string();
  CHECK(f.prepare(missing, &out).which() == status::code::not_found);
}

TEST_CASE("docker: a started release serves, confined, limited, logged, listed, and stop removes it",
          "[docker][runtime]") {
  DOCKER_OR_SKIP();
  fixture f("dk-run");
  auto spec = f.release("b00000000001", "hello from a container");
  spec.limits = {64, 0.5, 64};
  spec.container.app_port = 8080;  // the app listens on 8080 inside; the host port outside
  REQUIRE_OK(f.prepare(spec));
  instance_ref ref;
  REQUIRE_OK(f.driver->start(spec, &ref));
  CHECK(ref.id.rfind("docker:", 0) == 0);
  CHECK(ref.port == spec.port);
  CHECK(ref.pid > 0);
  CHECK(http_get(spec.port) == "hello from a container");
  CHECK(f.driver->inspect(ref).running());

  auto c = f.inspect_json(ref);
  CHECK(c["Name"] == "/berth-dk-run-production-b00000000001");
  CHECK(c["Config"]["User"] == "65534:65534");
  CHECK(c["HostConfig"]["SecurityOpt"] == nlohmann::json({"no-new-privileges"}));
  CHECK(c["HostConfig"]["CapDrop"] == nlohmann::json({"ALL"}));
  CHECK(c["HostConfig"]["Privileged"] == false);
  CHECK(c["HostConfig"]["RestartPolicy"]["Name"] == "no");
  CHECK(c["HostConfig"]["Memory"] == 64 << 20);
  CHECK(c["HostConfig"]["MemorySwap"] == 64 << 20);
  CHECK(c["HostConfig"]["NanoCpus"] == 500000000);
  CHECK(c["HostConfig"]["PidsLimit"] == 64);
  CHECK(c["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostIp"] == "127.0.0.1");
  CHECK(c["Mounts"].empty());  // no host folder
  bool host0 = false, port_inside = false;
  for (auto& e : c["Config"]["Env"]) {
    host0 = host0 || e == "HOST=0.0.0.0";
    port_inside = port_inside || e == "PORT=8080";
  }
  CHECK(host0);
  CHECK(port_inside);
  CHECK(c["Config"]["Labels"]["berth.project"] == "dk-run");
  CHECK(c["Config"]["Labels"]["berth.release"] == "b00000000001");

  resource_usage u;
  REQUIRE_OK(f.driver->usage(ref, &u));
  CHECK(u.from_cgroup);
  CHECK(u.rss_bytes > 0);
  CHECK(u.processes >= 1);
  CHECK(u.limits == resource_limits{64, 0.5, 64});

  // Its output lands in the log file, both streams.
  CHECK(eventually([&] {
    auto lines = f.driver->logs(spec, ref, 10);
    return contains(lines, "dk-out-b00000000001") && contains(lines, "dk-err-b00000000001");
  }));

  auto listed = f.driver->list({"dk-run", "", "", ""});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].id == ref.id);
  CHECK(listed[0].project == "dk-run");
  CHECK(listed[0].port == spec.port);
  CHECK(listed[0].pid == ref.pid);
  CHECK(f.driver->list({"dk-run", "production", "b00000000002", ""}).empty());
  // Another berth (another data dir) sees none of it.
  auto other = make_docker_runtime(f.engine, {(f.s.dir / "other").string(), "", {}});
  CHECK(other->list({"dk-run", "", "", ""}).empty());
  CHECK(other->inspect(ref).state == instance_state::gone);

  // A running holder of the name (direct switch: the same release on another port).
  auto again = spec;
  again.port = free_port();
  instance_ref second;
  REQUIRE_OK(f.driver->start(again, &second));
  CHECK(f.inspect_json(second)["Name"] == "/berth-dk-run-production-b00000000001-" + std::to_string(again.port));
  CHECK(http_get(again.port) == "hello from a container");
  CHECK(f.driver->stop(second, std::chrono::seconds(1)).is_ok());

  CHECK(f.driver->stop(ref, std::chrono::seconds(2)).is_ok());
  CHECK(f.driver->inspect(ref).state == instance_state::gone);
  CHECK(f.driver->stop(ref, std::chrono::seconds(2)).is_ok());  // already gone: ok
  CHECK(f.driver->usage(ref, &u).which() == status::code::not_found);
  CHECK(f.driver->list({"dk-run", "", "", ""}).empty());
}

TEST_CASE("docker: an exit is seen by inspect and by a watch, a missing command is not_found", "[docker][runtime]") {
  DOCKER_OR_SKIP();
  fixture f("dk-exit");
  auto spec = f.release("c00000000001", "x");
  REQUIRE_OK(f.prepare(spec));
  instance_ref ref;
  REQUIRE_OK(f.driver->start(spec, &ref));
  std::mutex mu;
  std::vector<instance_status> seen;
  auto token = f.driver->watch(ref, [&](const instance_status& st) {
    std::lock_guard<std::mutex> l(mu);
    seen.push_back(st);
  });
  (void)token;
  engine_reply r;
  REQUIRE_OK(f.engine->call("POST", "/containers/" + ref.id.substr(7) + "/kill?signal=KILL", nullptr, &r));
  CHECK(r.http == 204);
  REQUIRE(eventually([&] {
    std::lock_guard<std::mutex> l(mu);
    return !seen.empty();
  }));
  {
    std::lock_guard<std::mutex> l(mu);
    CHECK(seen.size() == 1);
    CHECK(seen[0].state == instance_state::exited);
    CHECK(seen[0].signal == 9);
  }
  auto st = f.driver->inspect(ref);
  CHECK(st.state == instance_state::exited);
  CHECK(st.describe() == "killed by signal 9");

  // A watch of what already ended calls back at once, on the caller's thread.
  bool at_once = false;
  f.driver->watch(ref, [&](const instance_status& s) { at_once = s.state == instance_state::exited; });
  CHECK(at_once);

  // An exit code of its own; an unwatched instance is not called back.
  auto quits = f.release("c00000000002", "x");
  quits.command = {"sh", "-c", "sleep 1; exit 3"};
  REQUIRE_OK(f.prepare(quits));
  instance_ref q;
  REQUIRE_OK(f.driver->start(quits, &q));
  std::atomic<int> code{-100};
  std::atomic<bool> unwatched_fired{false};
  f.driver->watch(q, [&](const instance_status& s) { code = s.exit_code; });
  auto dropped = f.driver->watch(ref, [&](const instance_status&) {});
  f.driver->unwatch(dropped);
  REQUIRE(eventually([&] { return code != -100; }));
  CHECK(code == 3);
  CHECK(f.driver->inspect(q).describe() == "exited with code 3");
  CHECK_FALSE(unwatched_fired);

  // A command that is not in the image: not_found, the engine's words, nothing left behind.
  auto bad = f.release("c00000000003", "x");
  bad.command = {"/no/such/program", "--flag"};
  REQUIRE_OK(f.prepare(bad));
  instance_ref none;
  auto s = f.driver->start(bad, &none);
  INFO(s.message());
  CHECK(s.which() == status::code::not_found);
  CHECK(s.message().find("/no/such/program") != std::string::npos);
  CHECK(f.driver->list({"dk-exit", "production", "c00000000003", ""}).empty());
}

TEST_CASE("docker: a volume keeps its files across releases, remove_project leaves nothing", "[docker][runtime]") {
  DOCKER_OR_SKIP();
  fixture f("dk-vol");
  auto v1 = f.release("d00000000001", "v1");
  v1.container.volumes = {{"data", "/var/lib/app"}};
  v1.command = {"sh", "-c", "echo kept-by-v1 > /var/lib/app/file; exec httpd -f -p $PORT -h /app"};
  REQUIRE_OK(f.prepare(v1));
  instance_ref r1;
  REQUIRE_OK(f.driver->start(v1, &r1));
  REQUIRE(http_get(v1.port) == "v1");
  CHECK(f.driver->stop(r1, std::chrono::seconds(1)).is_ok());

  auto v2 = f.release("d00000000002", "v2");
  v2.container.volumes = v1.container.volumes;
  v2.command = {"sh", "-c", "cp /var/lib/app/file /tmp/index.html; exec httpd -f -p $PORT -h /tmp"};
  REQUIRE_OK(f.prepare(v2));
  instance_ref r2;
  REQUIRE_OK(f.driver->start(v2, &r2));
  for (auto& l : f.driver->logs(v2, r2, 20)) UNSCOPED_INFO(l);
  CHECK(http_get(v2.port) == "kept-by-v1\n");

  // An image with its own USER (a name): a fresh volume is that user's too.
  auto named = f.release("d00000000003", "named",
                         "FROM " + it::test_base_image() + "\nCOPY index.html /srv/\nUSER nobody\n"
                         "CMD [\"sh\", \"-c\", \"id -u > /var/cache/app/uid; exec httpd -f -p $PORT -h /var/cache/app\"]\n");
  named.command.clear();
  named.container.volumes = {{"cache", "/var/cache/app"}};
  REQUIRE_OK(f.prepare(named));
  instance_ref r3;
  REQUIRE_OK(f.driver->start(named, &r3));
  CHECK(f.inspect_json(r3)["Config"]["User"] == "nobody");
  CHECK(http_get(named.port, "/uid") == "65534\n");
  CHECK(f.driver->stop(r3, std::chrono::seconds(1)).is_ok());

  // Pruning v1: its image goes; v2's (running) stays.
  CHECK(f.driver->remove_artifact(v1.labels).is_ok());
  bool exists = true;
  REQUIRE_OK(image_exists(*f.engine, "berth/dk-vol:d00000000001", &exists));
  CHECK_FALSE(exists);
  // Pruned while its container runs: untagged, the container goes on; the dangling image goes
  // with a later prune once the container is gone.
  CHECK(f.driver->remove_artifact(v2.labels).is_ok());
  REQUIRE_OK(image_exists(*f.engine, "berth/dk-vol:d00000000002", &exists));
  CHECK_FALSE(exists);
  CHECK(f.driver->inspect(r2).running());
  CHECK(http_get(v2.port) == "kept-by-v1\n");
  CHECK(f.driver->stop(r2, std::chrono::seconds(1)).is_ok());
  CHECK(f.driver->remove_artifact(named.labels).is_ok());
  CHECK(f.driver->remove_artifact({"dk-vol", "production", "", "docker"}).is_ok());
  std::vector<std::string> left;
  REQUIRE_OK(project_images(*f.engine, "dk-vol", f.s.dir.string(), &left));
  CHECK(left.empty());

  REQUIRE_OK(f.driver->remove_project("dk-vol"));
  auto labelled = [&](const std::string& what) {
    engine_reply r;
    f.engine->call("GET", what + "?all=1&" + label_filter({{"berth.project", "dk-vol"}}), nullptr, &r);
    return r.body;
  };
  CHECK(labelled("/containers/json").empty());
  CHECK(labelled("/images/json").empty());
  CHECK(labelled("/volumes")["Volumes"].empty());
  CHECK(f.driver->inspect(r2).state == instance_state::gone);
}

TEST_CASE("docker: an engine that is not there", "[docker][runtime]") {
  scratch s("down");
  auto engine = std::make_shared<docker_engine>("unix://" + (s.dir / "docker.sock").string());
  auto driver = make_docker_runtime(engine, {s.dir.string(), "", {}});
  instance_spec spec;
  spec.labels = {"dk-down", "production", "e00000000001", "docker"};
  spec.from.id = s.dir.string();
  spec.port = 1;
  auto t0 = std::chrono::steady_clock::now();
  instance_ref ref;
  CHECK(driver->start(spec, &ref).which() == status::code::io_error);
  artifact a;
  CHECK(driver->prepare(spec, {}, {}, &a).which() == status::code::io_error);
  // What serves keeps serving: berth acts on facts, never on a question that failed.
  CHECK(driver->inspect({"docker:0123", 1, 0, ""}).running());
  CHECK(driver->list({}).empty());
  CHECK(driver->remove_project("dk-down").which() == status::code::io_error);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}
