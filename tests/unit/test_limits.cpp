// Resource limits: the manifest's `limits` (strict parsing, defaults, round trip) and the
// cgroup verbs (runtime/process/cgroup.hpp) with the process runtime on this host's real
// cgroups. The cgroup cases need root and the memory, cpu(acct) and pids controllers; where
// they are missing they say so and stop.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include <catch2/catch.hpp>

#include "messages/manifest.hpp"
#include "runtime/process/cgroup.hpp"
#include "runtime/process/process_list.hpp"
#include "runtime/process/process_runtime.hpp"
#include "tests/unit/support.hpp"

using namespace berth;
using namespace berth::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

json with_limits(const char* env, json limits) {
  json m{{"name", "shop"}, {"source", {{"path", "/srv/shop"}}}};
  m[env] = {{"limits", limits}};
  return m;
}

#define REQUIRE_CGROUPS(tree)                                                  \
  if (!(tree)->unavailable().empty()) {                                        \
    WARN("cgroups unavailable here, case skipped: " << (tree)->unavailable()); \
    return;                                                                    \
  }

// Waits (bounded) for the exit of an instance.
struct exit_wait {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<instance_status> end;
  exit_callback callback() {
    return [this](const instance_status& s) {
      std::lock_guard<std::mutex> l(mu);
      end = s;
      cv.notify_all();
    };
  }
  std::optional<instance_status> wait(std::chrono::seconds limit) {
    std::unique_lock<std::mutex> l(mu);
    cv.wait_for(l, limit, [&] { return end.has_value(); });
    return end;
  }
};

bool alive(int pid) { return ::kill(pid, 0) == 0; }

// The child groups of a cgroup folder (its files are the controllers' knobs).
size_t subgroups(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory()) ++n;
  return n;
}

template <class F>
bool eventually_true(F f, std::chrono::milliseconds limit = 10s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return f();
}

std::string first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

TEST_CASE("limits: parsed per environment, kept as given, round-tripped", "[limits][manifest]") {
  auto j = json::parse(R"({"name": "shop", "source": {"path": "/srv/shop"},
    "preview": {"limits": {"memory_mb": 256}},
    "build": {"command": ["make"], "limits": {"memory_mb": 4096, "cpu": 2, "pids": 2048}},
    "production": {"limits": {"cpu": 0.25, "pids": 100}}})");
  auto r = parse_manifest(j);
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(r.value.preview_limits == resource_limits{256, 0, 0});
  CHECK(r.value.build_limits == resource_limits{4096, 2, 2048});
  CHECK(r.value.production_limits == resource_limits{0, 0.25, 100});
  CHECK(r.value.sets_limits());
  auto out = to_json(r.value);
  CHECK(out["preview"]["limits"] == json({{"memory_mb", 256}}));
  CHECK(out["production"]["limits"] == json({{"cpu", 0.25}, {"pids", 100}}));
  auto again = parse_manifest(out);
  REQUIRE(again.ok);
  CHECK(again.value.preview_limits == r.value.preview_limits);
  CHECK(again.value.build_limits == r.value.build_limits);
  CHECK(again.value.production_limits == r.value.production_limits);
  // None given: none written, none set.
  auto plain = parse_manifest(json::parse(R"({"name": "shop", "source": {"path": "/srv/shop"}})"));
  REQUIRE(plain.ok);
  CHECK_FALSE(plain.value.sets_limits());
  CHECK_FALSE(to_json(plain.value)["production"].contains("limits"));
}

TEST_CASE("limits: defaults fill what the manifest leaves out", "[limits]") {
  CHECK(default_limits("production") == resource_limits{512, 1, 512});
  CHECK(default_limits("preview") == resource_limits{512, 1, 512});
  CHECK(default_limits("build") == resource_limits{2048, 2, 1024});
  CHECK(effective_limits({64, 0, 0}, "production") == resource_limits{64, 1, 512});
  CHECK(effective_limits({0, 0.5, 0}, "build") == resource_limits{2048, 0.5, 1024});
}

TEST_CASE("limits: wrong types and out-of-range values are refused with the field path", "[limits][manifest]") {
  struct bad_case {
    const char* env;
    json limits;
    const char* error;
  };
  for (auto& c : std::vector<bad_case>{
           {"production", {{"memory_mb", -1}}, "production.limits.memory_mb: must be between 16 and 1048576"},
           {"production", {{"memory_mb", 0}}, "production.limits.memory_mb: must be between"},
           {"production", {{"memory_mb", 15}}, "production.limits.memory_mb: must be between"},
           {"production", {{"memory_mb", 2000000}}, "production.limits.memory_mb: must be between"},
           {"production", {{"memory_mb", 64.5}}, "production.limits.memory_mb: must be an integer"},
           {"production", {{"memory_mb", "64"}}, "production.limits.memory_mb: must be an integer"},
           {"preview", {{"cpu", 0}}, "preview.limits.cpu: must be between 0.01 and 1024"},
           {"preview", {{"cpu", -0.5}}, "preview.limits.cpu: must be between"},
           {"preview", {{"cpu", 0.001}}, "preview.limits.cpu: must be between"},
           {"preview", {{"cpu", 5000}}, "preview.limits.cpu: must be between"},
           {"preview", {{"cpu", "1"}}, "preview.limits.cpu: must be a number"},
           {"preview", {{"cpu", nullptr}}, "preview.limits.cpu: must be a number"},
           {"build", {{"pids", 7}}, "build.limits.pids: must be between 8 and 4194304"},
           {"build", {{"pids", -1}}, "build.limits.pids: must be between"},
           {"build", {{"pids", true}}, "build.limits.pids: must be an integer"},
           {"build", {{"disk_mb", 1}}, "build.limits.disk_mb: unknown field"},
           {"build", json::array(), "build.limits: must be an object"},
           {"build", 512, "build.limits: must be an object"}}) {
    auto r = parse_manifest(with_limits(c.env, c.limits));
    INFO(c.env << " " << c.limits.dump() << " -> " << r.error);
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.error, Catch::StartsWith(c.error));
  }
}

TEST_CASE("cgroups: off, or a folder that is no cgroup, gives no limits and says why", "[limits][cgroup]") {
  temp_dir dir;
  CHECK_THAT(cgroup_tree::open("off", "x")->unavailable(), Catch::Contains("off"));
  auto not_cgroup = cgroup_tree::open(dir.path.string(), "x");
  CHECK_THAT(not_cgroup->unavailable(), Catch::Contains("not a cgroup v2 group"));
  CHECK(not_cgroup->version() == "none");
  cgroup g;
  CHECK_FALSE(not_cgroup->create("p", "production", {64, 0, 0}, &g));
  // The process runtime then runs instances unlimited, and says why.
  auto rt = make_process_runtime(dir.path.string(), "off");
  CHECK_FALSE(rt->limits_unavailable().empty());
  instance_spec spec;
  spec.command = {"sh", "-c", "cat /proc/self/cgroup > cgroup.txt"};
  spec.workdir = dir.path;
  spec.limits = {64, 1, 64};
  instance_ref r;
  REQUIRE(rt->start(spec, &r));
  exit_wait w;
  rt->watch(r, w.callback());
  REQUIRE(w.wait(10s));
  CHECK(read_file(dir / "cgroup.txt").find("/berth/") == std::string::npos);
}

TEST_CASE("cgroups: create writes the limits, usage reads them back, remove_group removes", "[limits][cgroup]") {
  temp_dir dir;
  auto tree = cgroup_tree::open("auto", detail::data_dir_label(dir.path.string()));
  REQUIRE_CGROUPS(tree);
  CHECK(tree->version() != "none");
  cgroup g;
  REQUIRE(tree->create("shop", "production-abc", {64, 0.5, 32}, &g));
  REQUIRE_FALSE(g.empty());
  for (auto& d : g.dirs) CHECK(fs::is_directory(d));
  resource_usage u;
  REQUIRE(read_usage(g, &u));
  CHECK(u.from_cgroup);
  CHECK(u.limits == resource_limits{64, 0.5, 32});
  CHECK(u.processes == 0);
  CHECK(oom_kills(g) == 0);
  // A second group of the same name is another group.
  cgroup other;
  REQUIRE(tree->create("shop", "production-abc", {}, &other));
  CHECK(other.dirs != g.dirs);
  REQUIRE(read_usage(other, &u));
  CHECK_FALSE(u.limits.any());
  REQUIRE(remove_group(g));
  REQUIRE(remove_group(other));
  for (auto& d : g.dirs) CHECK_FALSE(fs::exists(d));
  CHECK(remove_group(g));  // already gone: ok
  tree->sweep();
  for (auto& base : tree->subtree()) CHECK_FALSE(fs::exists(base));  // nothing left behind
}

TEST_CASE("cgroups: the program runs in its group from its first instruction", "[limits][cgroup]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string(), "auto");
  if (!rt->limits_unavailable().empty()) {
    WARN("cgroups unavailable here, case skipped: " << rt->limits_unavailable());
    return;
  }
  instance_spec spec;
  spec.labels = {"shop", "production", "0123456789ab"};
  spec.command = {"cat", "/proc/self/cgroup"};  // exec'd directly: it reads its own membership
  spec.workdir = dir.path;
  spec.log = dir.path / "cgroup.txt";
  spec.limits = {64, 1, 64};
  instance_ref r;
  REQUIRE(rt->start(spec, &r));
  exit_wait w;
  rt->watch(r, w.callback());
  auto end = w.wait(10s);
  REQUIRE(end);
  CHECK(end->exit_code == 0);
  CHECK_FALSE(end->oom);
  auto text = read_file(dir / "cgroup.txt");
  INFO(text);
  CHECK(text.find("/berth/") != std::string::npos);
  CHECK(text.find("/shop/production-0123456789ab-") != std::string::npos);
}

TEST_CASE("cgroups: an instance over its memory limit ends oom, and its group goes", "[limits][cgroup]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string(), "auto");
  if (!rt->limits_unavailable().empty()) {
    WARN("cgroups unavailable here, case skipped: " << rt->limits_unavailable());
    return;
  }
  auto tree = cgroup_tree::open("auto", detail::data_dir_label(dir.path.string()));
  instance_spec spec;
  spec.labels = {"shop", "build", ""};
  spec.command = {"python3", "-c", "held = [b'\\x01' * (1 << 20) for _ in range(200)]"};
  spec.workdir = dir.path;
  spec.limits = {32, 0, 0};
  instance_ref r;
  REQUIRE(rt->start(spec, &r));
  exit_wait w;
  rt->watch(r, w.callback());
  auto end = w.wait(30s);
  REQUIRE(end);
  CHECK(end->oom);
  CHECK(end->signal == SIGKILL);
  CHECK_THAT(end->describe(), Catch::Contains("out of memory"));
  CHECK(rt->inspect(r).oom);  // remembered after the end
  for (auto& base : tree->subtree()) {  // its group went with it
    INFO(base);
    CHECK(subgroups(base + "/shop") == 0);
  }
  // Within the limit, the same program ends well.
  spec.limits = {512, 0, 0};
  REQUIRE(rt->start(spec, &r));
  exit_wait ok;
  rt->watch(r, ok.callback());
  auto fine = ok.wait(30s);
  REQUIRE(fine);
  CHECK_FALSE(fine->oom);
  CHECK(fine->exit_code == 0);
}

TEST_CASE("cgroups: usage reads the group, stop kills what left the process group", "[limits][cgroup]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string(), "auto");
  if (!rt->limits_unavailable().empty()) {
    WARN("cgroups unavailable here, case skipped: " << rt->limits_unavailable());
    return;
  }
  auto tree = cgroup_tree::open("auto", detail::data_dir_label(dir.path.string()));
  instance_spec spec;
  spec.labels = {"shop", "preview", ""};
  // A daemon that escapes the process group (setsid) and writes its pid, then the leader waits.
  spec.command = {"sh", "-c", "setsid sh -c 'echo $$ > escaped.pid; exec sleep 60' & exec sleep 60"};
  spec.workdir = dir.path;
  spec.limits = {128, 0.5, 16};
  instance_ref r;
  REQUIRE(rt->start(spec, &r));
  REQUIRE(eventually_true([&] { return !first_line(dir / "escaped.pid").empty(); }));
  int escaped = std::stoi(first_line(dir / "escaped.pid"));
  REQUIRE(alive(escaped));
  resource_usage u;
  REQUIRE(rt->usage(r, &u));
  CHECK(u.from_cgroup);
  CHECK(u.processes >= 2);
  CHECK(u.rss_bytes > 0);
  CHECK(u.limits == resource_limits{128, 0.5, 16});
  cgroup g;
  REQUIRE(tree->find(r.pid, &g));
  REQUIRE(rt->stop(r, 500ms));
  CHECK(eventually_true([&] { return !alive(escaped) || first_line("/proc/" + std::to_string(escaped) + "/stat").find(") Z") != std::string::npos; }));
  for (auto& d : g.dirs) CHECK_FALSE(fs::exists(d));
}

TEST_CASE("cgroups: a new runtime sweeps groups whose instances ended, never a live one", "[limits][cgroup]") {
  temp_dir dir;
  auto label = detail::data_dir_label(dir.path.string());
  auto tree = cgroup_tree::open("auto", label);
  REQUIRE_CGROUPS(tree);
  auto rt = make_process_runtime(dir.path.string(), "auto");
  cgroup stale;
  REQUIRE(tree->create("gone", "production-0123", {64, 0, 0}, &stale));  // its instance ended unseen
  instance_spec spec;
  spec.labels = {"alive", "production", "4567"};
  spec.command = {"sleep", "60"};
  spec.workdir = dir.path;
  spec.limits = {64, 0, 0};
  instance_ref r;
  REQUIRE(rt->start(spec, &r));
  cgroup live;
  REQUIRE(tree->find(r.pid, &live));
  auto restarted = make_process_runtime(dir.path.string(), "auto");  // berth restarts
  for (auto& d : stale.dirs) CHECK_FALSE(fs::exists(d));
  for (auto& d : live.dirs) CHECK(fs::exists(d));
  // The restarted runtime finds the adopted instance's group for usage and stop.
  resource_usage u;
  REQUIRE(restarted->usage(r, &u));
  CHECK(u.from_cgroup);
  CHECK(u.limits.memory_mb == 64);
  REQUIRE(restarted->stop(r, 500ms));
  for (auto& d : live.dirs) CHECK_FALSE(fs::exists(d));
}

TEST_CASE("cgroups: what an ended instance left behind ends with it", "[limits][cgroup]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string(), "auto");
  if (!rt->limits_unavailable().empty()) {
    WARN("cgroups unavailable here, case skipped: " << rt->limits_unavailable());
    return;
  }
  auto tree = cgroup_tree::open("auto", detail::data_dir_label(dir.path.string()));
  instance_spec spec;
  spec.labels = {"shop", "production", "89ab"};
  // A child that would outlive its parent (it holds whatever the parent gave it, a port say).
  spec.command = {"sh", "-c", "sleep 60 & echo $! > child.pid; exec sleep 60"};
  spec.workdir = dir.path;
  spec.limits = {64, 0, 16};
  instance_ref r;
  REQUIRE(rt->start(spec, &r));
  REQUIRE(eventually_true([&] { return !first_line(dir / "child.pid").empty(); }));
  int child = std::stoi(first_line(dir / "child.pid"));
  cgroup g;
  REQUIRE(tree->find(r.pid, &g));
  exit_wait w;
  rt->watch(r, w.callback());
  ::kill(r.pid, SIGKILL);  // the leader only, as the OOM killer would
  auto end = w.wait(10s);
  REQUIRE(end);
  CHECK_FALSE(end->oom);
  CHECK(eventually_true([&] {
    return !alive(child) || first_line("/proc/" + std::to_string(child) + "/stat").find(") Z") != std::string::npos;
  }));
  for (auto& d : g.dirs) CHECK_FALSE(fs::exists(d));
}

TEST_CASE("cgroups: groups other data dirs abandoned are swept once old, fresh ones never", "[limits][cgroup]") {
  temp_dir mine_dir, gone_dir, busy_dir;
  auto mine = cgroup_tree::open("auto", detail::data_dir_label(mine_dir.path.string()));
  REQUIRE_CGROUPS(mine);
  auto gone = cgroup_tree::open("auto", detail::data_dir_label(gone_dir.path.string()));
  auto busy = cgroup_tree::open("auto", detail::data_dir_label(busy_dir.path.string()));
  cgroup abandoned, fresh;
  REQUIRE(gone->create("old", "production-1", {64, 0, 0}, &abandoned));
  REQUIRE(busy->create("new", "production-2", {64, 0, 0}, &fresh));  // its process is about to join
  // An hour old: the leaf, its project folder and the data dir's subtree.
  struct timespec hour_ago[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
  for (auto& d : abandoned.dirs)
    for (auto p = fs::path(d); p != fs::path(d).parent_path().parent_path().parent_path(); p = p.parent_path())
      REQUIRE(::utimensat(AT_FDCWD, p.c_str(), hour_ago, 0) == 0);
  CHECK(mine->sweep_abandoned(std::chrono::minutes(10)) == 1);
  for (auto& d : abandoned.dirs) {
    CHECK_FALSE(fs::exists(d));
    CHECK_FALSE(fs::exists(fs::path(d).parent_path().parent_path()));  // the subtree too
  }
  for (auto& d : fresh.dirs) CHECK(fs::exists(d));
  remove_group(fresh);
  busy->sweep();
  mine->sweep();
}
