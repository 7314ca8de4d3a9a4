// The docker driver across a berth restart (adoption: watch and logs go on) and the preview
// container (the base image with the source bind-mounted); plus the measured build + start.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "runtime/docker/docker_runtime.hpp"
#include "runtime/docker/images.hpp"
#include "runtime/process/process_runtime.hpp"
#include "runtime/process/sandbox.hpp"
#include "tests/common/support.hpp"
#include "tests/docker/docker_test_support.hpp"
#include "tests/docker/socket_relay.hpp"

using namespace berth;
using namespace berth::dk;
namespace fs = std::filesystem;

namespace {

// The tick-N lines of a log file, in order.
std::vector<int> ticks(const fs::path& log) {
  std::vector<int> out;
  std::istringstream in(it::read_file(log.string()));
  for (std::string l; std::getline(in, l);)
    if (l.rfind("tick-", 0) == 0) out.push_back(std::stoi(l.substr(5)));
  return out;
}


}  // namespace

TEST_CASE("docker: after a restart of berth a running container is adopted, its log goes on, once",
          "[docker][runtime]") {
  DOCKER_OR_SKIP();
  scratch s("adopt");
  auto engine = test_engine();
  project_cleanup cleanup{engine, s.dir.string(), "dk-adopt"};
  container_runtime_options o{s.dir.string(), "", {}};
  auto first = make_docker_runtime(engine, o);
  instance_spec spec;
  spec.labels = {"dk-adopt", "production", "f00000000001", "docker"};
  spec.from.id = (s.dir / "release").string();
  write_httpd_release(spec.from.id, "x");
  spec.container.base = it::test_base_image();
  spec.command = {"sh", "-c", "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.1; done"};
  spec.port = free_port();
  spec.log = s.dir / "production.log";
  artifact a;
  REQUIRE_OK(first->prepare(spec, {}, {}, &a));
  instance_ref ref;
  REQUIRE_OK(first->start(spec, &ref));
  REQUIRE(eventually([&] { return ticks(spec.log).size() >= 3; }));

  // The container's processes are in the host's /proc with the project's BERTH_* variables:
  // the process driver of the same data dir must not take them for its own (a restart would
  // stop them as strays).
  spec.env = {{"BERTH_PROJECT", "dk-adopt"}, {"BERTH_ENV", "production"}};
  auto labelled = spec;
  labelled.labels.release = "f00000000002";
  labelled.port = free_port();
  labelled.command = {"sleep", "60"};
  labelled.log = s.dir / "other.log";
  REQUIRE_OK(first->prepare(labelled, {}, {}, &a));
  instance_ref lref;
  REQUIRE_OK(first->start(labelled, &lref));
  REQUIRE(lref.pid > 0);
  auto process = make_process_runtime(s.dir.string(), "off", make_sandbox_options(false));
  for (auto& r : process->list({"dk-adopt", "production", "", ""})) CHECK(r.pid != lref.pid);
  REQUIRE_OK(first->stop(lref, std::chrono::milliseconds(0)));

  first.reset();  // berth goes away; the container does not
  auto second = make_docker_runtime(engine, o);
  auto listed = second->list({"dk-adopt", "", "", ""});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].id == ref.id);
  REQUIRE(second->inspect(ref).running());
  std::atomic<bool> ended{false};
  second->watch(ref, [&](const instance_status& st) { ended = st.state == instance_state::exited; });
  auto before = ticks(spec.log).size();
  CHECK(eventually([&] { return ticks(spec.log).size() >= before + 5; }));
  auto t = ticks(spec.log);
  CHECK(std::is_sorted(t.begin(), t.end()));
  CHECK(std::adjacent_find(t.begin(), t.end()) == t.end());  // nothing written twice

  REQUIRE_OK(second->stop(ref, std::chrono::milliseconds(500)));
  CHECK(eventually([&] { return ended.load(); }));
  CHECK(second->list({"dk-adopt", "", "", ""}).empty());
  CHECK(second->remove_project("dk-adopt").is_ok());
}

TEST_CASE("docker: an exit while the engine could not be reached is reported once it can be again",
          "[docker][runtime]") {
  DOCKER_OR_SKIP();
  scratch s("relay");
  auto real = test_engine();
  project_cleanup cleanup{real, s.dir.string(), "dk-relay"};
  socket_relay relay((s.dir / "relay.sock").string(), real->socket_path());
  auto engine = std::make_shared<docker_engine>("unix://" + (s.dir / "relay.sock").string());
  auto driver = make_docker_runtime(engine, {s.dir.string(), "", {}});
  instance_spec spec;
  spec.labels = {"dk-relay", "production", "f10000000001", "docker"};
  spec.from.id = (s.dir / "release").string();
  write_httpd_release(spec.from.id, "x");
  spec.container.base = it::test_base_image();
  spec.command = {"sleep", "600"};
  spec.port = free_port();
  artifact a;
  REQUIRE_OK(driver->prepare(spec, {}, {}, &a));
  instance_ref ref;
  REQUIRE_OK(driver->start(spec, &ref));
  std::atomic<int> fired{0};
  std::atomic<int> signal{0};
  driver->watch(ref, [&](const instance_status& st) {
    ++fired;
    signal = st.signal;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the events stream is up

  relay.cut();
  // While berth cannot ask, what it knows runs keeps running.
  CHECK(driver->inspect(ref).running());
  engine_reply r;
  REQUIRE_OK(real->call("POST", "/containers/" + ref.id.substr(7) + "/kill?signal=KILL", nullptr, &r));
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  CHECK(fired == 0);
  relay.resume();
  CHECK(eventually([&] { return fired > 0; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(fired == 1);  // once, though both the re-check and the replayed event saw it
  CHECK(signal == 9);
  CHECK(driver->inspect(ref).state == instance_state::exited);
}

TEST_CASE("docker: the preview runs its base image with the source mounted, nothing else of the host",
          "[docker][runtime]") {
  DOCKER_OR_SKIP();
  scratch s("preview");
  auto engine = test_engine();
  project_cleanup cleanup{engine, s.dir.string(), "dk-preview"};
  auto driver = make_docker_runtime(engine, {s.dir.string(), "", {}});
  auto src = s.dir / "preview" / "src";
  write_httpd_release(src, "preview body");
  instance_spec spec;
  spec.labels = {"dk-preview", "preview", "", "docker"};
  spec.command = {"sh", "-c", "exec httpd -f -p $PORT -h ."};
  spec.port = free_port();
  spec.log = s.dir / "preview.log";
  spec.sandbox.enabled = true;
  spec.sandbox.writable = {src};
  artifact a;
  CHECK(driver->prepare(spec, {}, {}, &a).which() == status::code::invalid_argument);  // no image.base
  instance_ref ref;
  CHECK(driver->start(spec, &ref).which() == status::code::invalid_argument);
  spec.container.base = "berth-test/dk-not-there:1";
  CHECK(driver->prepare(spec, {}, {}, &a).which() == status::code::not_found);
  spec.container.base = it::test_base_image();
  REQUIRE_OK(driver->prepare(spec, {}, {}, &a));
  CHECK(a.id == it::test_base_image());
  REQUIRE_OK(driver->start(spec, &ref));
  CHECK(http_get(spec.port) == "preview body");
  engine_reply r;
  REQUIRE_OK(engine->call("GET", "/containers/" + ref.id.substr(7) + "/json", nullptr, &r));
  CHECK(r.body["Name"] == "/berth-dk-preview-preview");
  CHECK(r.body["Config"]["WorkingDir"] == src.string());
  REQUIRE(r.body["Mounts"].size() == 1);
  CHECK(r.body["Mounts"][0]["Source"] == src.string());
  CHECK(r.body["Mounts"][0]["Destination"] == src.string());
  REQUIRE_OK(driver->stop(ref, std::chrono::seconds(1)));
  CHECK(driver->remove_project("dk-preview").is_ok());
  bool exists = false;
  REQUIRE_OK(image_exists(*engine, it::test_base_image(), &exists));
  CHECK(exists);  // the base is not the project's: it stays
}

// Not a check: the figure the issue asks for. Run with
// `berth_docker_tests "[.measure]"`: build + start + first HTTP answer of the busybox app.
TEST_CASE("docker: image build + start of the busybox app, measured", "[.measure][docker]") {
  DOCKER_OR_SKIP();
  scratch s("measure");
  auto engine = test_engine();
  project_cleanup cleanup{engine, s.dir.string(), "dk-measure"};
  auto driver = make_docker_runtime(engine, {s.dir.string(), "", {}});
  std::vector<double> build_ms, start_ms;
  for (int i = 0; i < 5; ++i) {
    instance_spec spec;
    char hash[13];
    std::snprintf(hash, sizeof hash, "9%011d", i);
    spec.labels = {"dk-measure", "production", hash, "docker"};
    spec.from.id = (s.dir / hash).string();
    write_httpd_release(spec.from.id, std::string("release ") + hash);
    spec.container.base = it::test_base_image();
    spec.command = httpd_command();
    spec.port = free_port();
    spec.log = s.dir / "production.log";
    auto t0 = std::chrono::steady_clock::now();
    artifact a;
    REQUIRE_OK(driver->prepare(spec, {}, {}, &a));
    auto t1 = std::chrono::steady_clock::now();
    instance_ref ref;
    REQUIRE_OK(driver->start(spec, &ref));
    REQUIRE(http_get(spec.port, "/", 200) == std::string("release ") + hash);
    auto t2 = std::chrono::steady_clock::now();
    build_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    start_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    driver->stop(ref, std::chrono::seconds(1));
  }
  std::sort(build_ms.begin(), build_ms.end());
  std::sort(start_ms.begin(), start_ms.end());
  WARN("image build median " << build_ms[2] << " ms (min " << build_ms[0] << ", max " << build_ms[4]
                             << "); start to first HTTP answer median " << start_ms[2] << " ms (min "
                             << start_ms[0] << ", max " << start_ms[4] << ")");
  driver->remove_project("dk-measure");
}
