// The usage cache (runtime/usage_cache.hpp) over the real process runtime: a python3 process
// that allocates when told to. Samples are reused only while they are younger than max_age.
#include <catch2/catch.hpp>

#include "tests/unit/support.hpp"

#include <chrono>
#include <functional>
#include <thread>

#include "runtime/process/process_runtime.hpp"
#include "runtime/usage_cache.hpp"

using namespace berth;
using namespace std::chrono_literals;
using berth::test::temp_dir;
using berth::test::write_file;

namespace {

using steady = std::chrono::steady_clock;

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10000ms) {
  auto deadline = steady::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (steady::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

// Writes `ready` once python runs, waits for the file `go`, then holds 64 MiB (touched) and writes `held`, then sleeps.
instance_spec allocator(const temp_dir& dir) {
  instance_spec spec;
  spec.command = {"python3", "-c",
                  "import os, time\n"
                  "open('ready', 'w').close()\n"
                  "while not os.path.exists('go'): time.sleep(0.01)\n"
                  "held = bytearray(b'\\x01' * (64 << 20))\n"
                  "open('held', 'w').close()\n"
                  "time.sleep(60)\n"};
  spec.workdir = dir.path;
  spec.log = dir.path / "app.log";
  return spec;
}

}  // namespace

TEST_CASE("usage cache: a sample serves until max_age and then the figures move", "[usage_cache]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string());
  instance_ref ref;
  REQUIRE(rt->start(allocator(dir), &ref));
  usage_cache cache(1000ms);
  // Sampled once the interpreter runs (right after the fork its figures can still read 0).
  REQUIRE(eventually([&] { return std::filesystem::exists(dir.path / "ready"); }));

  auto taken = steady::now();
  auto first = cache.get(*rt, ref);
  REQUIRE(first.known);
  REQUIRE(first.memory_bytes > 0);
  write_file(dir.path / "go", "");
  REQUIRE(eventually([&] { return std::filesystem::exists(dir.path / "held"); }));
  auto second = cache.get(*rt, ref);
  if (steady::now() - taken < 1000ms) CHECK(second.memory_bytes == first.memory_bytes);  // the same sample
  CHECK(cache.size() == 1);

  // Past max_age a new sample shows the 64 MiB the process now holds.
  REQUIRE(eventually([&] { return cache.get(*rt, ref).memory_bytes >= first.memory_bytes + (48u << 20); }, 5000ms));
  // Uncached, the same.
  CHECK(sample_usage(*rt, ref).memory_bytes >= first.memory_bytes + (48u << 20));

  REQUIRE(rt->stop(ref, 2000ms));
  CHECK_FALSE(sample_usage(*rt, ref).known);
  CHECK(eventually([&] { return !cache.get(*rt, ref).known; }, 3000ms));  // once its sample is stale
}

TEST_CASE("usage cache: an empty ref is never sampled or kept", "[usage_cache]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string());
  usage_cache cache(1000ms);
  CHECK_FALSE(cache.get(*rt, instance_ref{}).known);
  CHECK(cache.size() == 0);
}
