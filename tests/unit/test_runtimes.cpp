// runtime_set (runtime/runtimes.hpp): the one driver actors hold, routing by runtime and by
// identity. Real processes through the process driver; no container engine here (that is
// tests/docker/): a server whose container runtimes are off says so, and never mistakes a
// recorded container for a process.
#include <catch2/catch.hpp>

#include "tests/unit/support.hpp"

#include <chrono>
#include <thread>

#include "runtime/process/process_runtime.hpp"
#include "runtime/runtimes.hpp"

using namespace berth;
using namespace std::chrono_literals;
using berth::test::temp_dir;

namespace {
instance_spec sleeper(const temp_dir& dir, const std::string& runtime) {
  instance_spec s;
  s.labels = {"rt-proj", "production", "abc", runtime};
  s.workdir = dir.path;
  s.command = {"sleep", "30"};
  return s;
}
}  // namespace

TEST_CASE("runtime_set runs processes and refuses a runtime that is off", "[runtimes]") {
  temp_dir dir;
  runtime_set set(make_process_runtime(dir.path.string()), nullptr, nullptr, "--docker-host off");
  CHECK(set.runtime_unavailable("process").empty());
  CHECK(set.runtime_unavailable("").empty());
  CHECK_THAT(set.runtime_unavailable("docker"), Catch::Contains("--docker-host off"));
  CHECK_THAT(set.runtime_unavailable("k8s"), Catch::Contains("no runtime named"));

  instance_ref r;
  auto refused = set.start(sleeper(dir, "docker"), &r);
  CHECK(refused.which() == status::code::invalid_argument);
  CHECK_THAT(refused.message(), Catch::Contains("docker runtime is not available"));
  CHECK(r.empty());
  artifact a;
  CHECK(set.prepare(sleeper(dir, "swarm"), {}, {}, &a).which() == status::code::invalid_argument);

  REQUIRE(set.start(sleeper(dir, "process"), &r));
  CHECK(set.inspect(r).running());
  auto listed = set.list({"rt-proj", "production", "", ""});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0] == r);
  CHECK(listed[0].project == "rt-proj");
  CHECK(set.list({"rt-proj", "", "", "docker"}).empty());
  REQUIRE(set.stop(r, 1000ms));
  CHECK_FALSE(set.inspect(r).running());
}

TEST_CASE("runtime_set sends a recorded container to its runtime, not to the process driver", "[runtimes]") {
  temp_dir dir;
  runtime_set set(make_process_runtime(dir.path.string()), nullptr, nullptr, "--docker-host off");
  instance_ref container{"docker:0123456789abcdef", 8123, 4242};
  CHECK(set.inspect(container).state == instance_state::gone);
  auto s = set.stop(container, 100ms);
  CHECK(s.which() == status::code::io_error);  // never a kill of pid 4242
  bool called = false;
  set.watch(container, [&](const instance_status& st) { called = st.state == instance_state::gone; });
  CHECK(called);
  resource_usage u;
  CHECK(set.usage(container, &u).which() == status::code::not_found);
  CHECK(set.remove_project("rt-proj"));
}

TEST_CASE("a start-up sweep asks the project's runtime, and the recorded instance's when it changed", "[runtimes]") {
  instance_ref process{process_instance_id(42, 7, 42), 8001, 42};
  instance_ref container{"docker:0123456789abcdef", 8002, 4242};
  CHECK(runtime_of(process) == "process");
  CHECK(runtime_of(container) == "docker");
  CHECK(runtime_of(instance_ref{"swarm:svc:abc", 8003, 0}) == "swarm");
  CHECK(runtimes_to_sweep("process", {}) == std::vector<std::string>{"process"});
  CHECK(runtimes_to_sweep("process", process) == std::vector<std::string>{"process"});
  CHECK(runtimes_to_sweep("docker", container) == std::vector<std::string>{"docker"});
  CHECK(runtimes_to_sweep("docker", process) == std::vector<std::string>{"docker", "process"});
  CHECK(runtimes_to_sweep("process", container) == std::vector<std::string>{"process", "docker"});
}
