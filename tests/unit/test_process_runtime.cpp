// The process runtime driver (runtime/process/process_runtime.hpp) and the exit watches and
// usage of process_driver it rests on. Real processes (sh, sleep, python3); every wait is a
// bounded poll, no assertion on a duration.
#include <catch2/catch.hpp>

#include "tests/unit/support.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/files/layout.hpp"
#include "runtime/process/process_runtime.hpp"
#include "runtime/process/reaper.hpp"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

using namespace berth;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

using berth::test::read_file;
using berth::test::read_stat;
using berth::test::stat_fields;
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


// The ref of a process found in /proc, as a restarted berth would have recorded it.
instance_ref ref_from_proc(int pid) {
  stat_fields st;
  REQUIRE(read_stat(pid, &st));
  return instance_ref{process_instance_id(pid, st.start_time, st.pgrp), 0, pid};
}

int read_pid_file(const std::string& path) {
  int pid = 0;
  eventually([&] {
    pid = std::atoi(read_file(path).c_str());
    return pid > 0;
  });
  return pid;
}

size_t count_dir(const char* dir, const std::function<bool(const std::string&)>& pred) {
  size_t n = 0;
  DIR* d = ::opendir(dir);
  while (dirent* e = d ? ::readdir(d) : nullptr)
    if (e->d_name[0] != '.' && pred(e->d_name)) ++n;
  if (d) ::closedir(d);
  return n;
}

size_t thread_count() {
  return count_dir("/proc/self/task", [](const std::string&) { return true; });
}

bool have_pidfds() {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
  if (fd >= 0) ::close(fd);
  return fd >= 0;
}

size_t open_pidfds() {
  return count_dir("/proc/self/fd", [](const std::string& fd) {
    char target[256] = {};
    ssize_t n = ::readlink(("/proc/self/fd/" + fd).c_str(), target, sizeof target - 1);
    return n > 0 && std::string(target, static_cast<size_t>(n)) == "anon_inode:[pidfd]";
  });
}

// What the exit callbacks of a watch saw. Shared with the callback, which may outlive a test
// that failed.
struct recorder {
  std::mutex mu;
  std::vector<instance_status> calls;
  std::vector<std::thread::id> threads;
  std::function<void()> also;  // run inside the callback

  size_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return calls.size();
  }
  instance_status first() {
    std::lock_guard<std::mutex> lock(mu);
    return calls.empty() ? instance_status{} : calls.front();
  }
  std::thread::id thread() {
    std::lock_guard<std::mutex> lock(mu);
    return threads.empty() ? std::thread::id{} : threads.front();
  }
};

exit_callback record(const std::shared_ptr<recorder>& r) {
  return [r](const instance_status& s) {
    if (r->also) r->also();
    std::lock_guard<std::mutex> lock(r->mu);
    r->calls.push_back(s);
    r->threads.push_back(std::this_thread::get_id());
  };
}

instance_spec sh_spec(const temp_dir& dir, const std::string& script) {
  instance_spec spec;
  spec.command = {"sh", "-c", script};
  spec.workdir = dir.path;
  spec.log = dir.path / "app.log";
  return spec;
}

// A child that runs until the file `go` appears in its folder, then exits with `code`.
instance_spec until_go(const temp_dir& dir, const std::string& go, int code) {
  return sh_spec(dir, "while [ ! -e " + go + " ]; do sleep 0.01; done; exit " + std::to_string(code));
}

std::set<std::string> ids_of(const std::vector<instance_ref>& refs) {
  std::set<std::string> out;
  for (auto& r : refs) out.insert(r.id);
  return out;
}

}  // namespace

TEST_CASE("process_runtime: start, inspect, stop, labels in the environment", "[process_runtime]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string());
  CHECK(std::string(rt->name()) == "process");
  instance_spec spec = sh_spec(dir, "echo started; sleep 30");  // no exec: environ is stable
  spec.labels = {"shop", "production", "0123456789ab"};
  spec.env = {{"BERTH_PROJECT", "spoofed"}, {"APP_MODE", "1"}};
  spec.port = 4567;
  fs::create_directories(dir.path / "logs");
  spec.log = dir.path / "logs" / "app.log";
  instance_ref ref;
  REQUIRE(rt->start(spec, &ref));
  REQUIRE(ref.pid > 0);
  CHECK(ref.port == 4567);
  int pid = 0, pgid = 0;
  uint64_t start_time = 0;
  REQUIRE(parse_process_instance_id(ref.id, &pid, &start_time, &pgid));
  CHECK(pid == ref.pid);
  CHECK(pgid == pid);
  CHECK(rt->inspect(ref).running());
  CHECK(rt->inspect(ref).describe() == "running");

  REQUIRE(eventually([&] { return read_file(spec.log).find("started\n") != std::string::npos; }));
  std::string env = read_file("/proc/" + std::to_string(pid) + "/environ");
  CHECK(env.find(std::string("BERTH_PROJECT=shop\0", 19)) != std::string::npos);
  CHECK(env.find(std::string("BERTH_ENV=production\0", 21)) != std::string::npos);
  CHECK(env.find(std::string("BERTH_RELEASE=0123456789ab\0", 27)) != std::string::npos);
  CHECK(env.find("APP_MODE=1") != std::string::npos);
  CHECK(env.find("PORT=4567") != std::string::npos);
  CHECK(env.find("spoofed") == std::string::npos);
  CHECK(env.find("BERTH_DATA_DIR=" + fs::canonical(dir.path).string() + '\0') != std::string::npos);
  CHECK(fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd") == fs::canonical(dir.path));

  REQUIRE(rt->stop(ref, 5000ms));
  auto st = rt->inspect(ref);
  CHECK(st.state == instance_state::exited);
  CHECK(st.signal == SIGTERM);
  CHECK(st.describe() == "killed by signal 15");
  CHECK(rt->stop(ref, 100ms));  // already stopped: ok

  // An artifact runs in its folder; labels left empty are not set.
  fs::create_directories(dir.path / "release");
  instance_spec in_release = sh_spec(dir, "pwd; env");
  in_release.from.id = (dir.path / "release").string();
  in_release.workdir = dir.path / "elsewhere";  // ignored: from.id wins
  in_release.labels = {"", "proxy", ""};
  in_release.log = dir.path / "release.log";
  REQUIRE(rt->start(in_release, &ref));
  REQUIRE(eventually([&] { return rt->inspect(ref).state == instance_state::exited; }));
  std::string out = read_file(in_release.log);
  CHECK(out.rfind(fs::canonical(dir.path / "release").string() + "\n", 0) == 0);
  CHECK(out.find("BERTH_ENV=proxy\n") != std::string::npos);
  CHECK(out.find("BERTH_PROJECT=") == std::string::npos);
  CHECK(out.find("BERTH_RELEASE=") == std::string::npos);
}

TEST_CASE("process_runtime: start errors are the process driver's", "[process_runtime]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string());
  instance_ref ref;
  instance_spec spec = sh_spec(dir, "true");
  spec.command = {"berth-no-such-program-4711"};
  CHECK(rt->start(spec, &ref).which() == status::code::not_found);
  spec.command = {};
  CHECK(rt->start(spec, &ref).which() == status::code::invalid_argument);
  spec = sh_spec(dir, "true");
  spec.log = dir.path / "no-such-dir" / "app.log";
  CHECK(rt->start(spec, &ref).which() == status::code::io_error);
  CHECK(ref.empty());
}

TEST_CASE("process_runtime: prepare runs the folder itself", "[process_runtime]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string());
  artifact a;
  fs::create_directories(dir.path / "rel");
  auto spec_of = [](const fs::path& folder) {
    instance_spec s;
    s.labels = {"p", "production", "x"};
    s.from.id = folder.string();
    return s;
  };
  REQUIRE(rt->prepare(spec_of(dir.path / "rel"), {}, {}, &a));
  CHECK(a.id == (dir.path / "rel").string());
  CHECK(rt->remove_artifact({"p", "production", "x"}));
  CHECK(fs::is_directory(dir.path / "rel"));
  CHECK(rt->prepare(spec_of(dir.path / "missing"), {}, {}, &a).which() == status::code::not_found);
  write_file(dir.path / "file", "x");
  CHECK(rt->prepare(spec_of(dir.path / "file"), {}, {}, &a).which() == status::code::not_found);
}

TEST_CASE("process_runtime: watch fires once, with the exit code, off the lock", "[process_runtime]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string());
  instance_ref ref;
  REQUIRE(rt->start(until_go(dir, "go", 3), &ref));
  auto r = std::make_shared<recorder>();
  instance_status seen_inside;
  r->also = [&, ref] { seen_inside = rt->inspect(ref); };  // would deadlock under the lock
  rt->watch(ref, record(r));
  CHECK(r->count() == 0);
  write_file(dir.path / "go", "");
  REQUIRE(eventually([&] { return r->count() == 1; }));
  auto st = r->first();
  CHECK(st.state == instance_state::exited);
  CHECK(st.exit_code == 3);
  CHECK(st.describe() == "exited with code 3");
  CHECK(r->thread() != std::this_thread::get_id());
  CHECK(seen_inside.state == instance_state::exited);
  std::this_thread::sleep_for(300ms);  // a second call would have come by now
  CHECK(r->count() == 1);
}

TEST_CASE("process_runtime: watch of a process that is not our child", "[process_runtime]") {
  bool use_pidfds = true;
  SECTION("through a pidfd") { use_pidfds = true; }
  SECTION("through /proc, as without pidfds") { use_pidfds = false; }
  detail::reaper::get().set_watch_pidfds(use_pidfds);
  struct restore {
    ~restore() { detail::reaper::get().set_watch_pidfds(true); }
  } restore_pidfds;
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string());
  instance_ref parent;
  REQUIRE(rt->start(sh_spec(dir, "sleep 30 & echo $! > bg.pid"), &parent));
  int pid = read_pid_file(dir / "bg.pid");
  REQUIRE(pid > 0);
  REQUIRE(eventually([&] { return rt->inspect(parent).state == instance_state::exited; }));
  stat_fields st;
  REQUIRE(read_stat(pid, &st));
  REQUIRE(st.ppid != ::getpid());  // reparented: not our child
  instance_ref ref = ref_from_proc(pid);

  size_t pidfds = open_pidfds();
  auto replaced = std::make_shared<recorder>();
  auto r = std::make_shared<recorder>();
  rt->watch(ref, record(replaced));
  rt->watch(ref, record(r));  // replaces the first: one pidfd at most
  CHECK(open_pidfds() == pidfds + (use_pidfds && have_pidfds() ? 1 : 0));
  CHECK(rt->inspect(ref).running());
  CHECK(r->count() == 0);
  REQUIRE(::kill(pid, SIGKILL) == 0);
  REQUIRE(eventually([&] { return r->count() == 1; }));
  CHECK(r->first().state == instance_state::exited);
  CHECK(r->thread() != std::this_thread::get_id());
  CHECK(open_pidfds() == pidfds);  // closed once fired
  std::this_thread::sleep_for(300ms);
  CHECK(r->count() == 1);
  CHECK(replaced->count() == 0);
}

TEST_CASE("process_runtime: unwatch before the exit means no callback", "[process_runtime]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string());
  instance_ref a, b;
  REQUIRE(rt->start(until_go(dir, "go-a", 0), &a));
  REQUIRE(rt->start(until_go(dir, "go-b", 0), &b));
  auto ra = std::make_shared<recorder>();
  auto rb = std::make_shared<recorder>();
  size_t pidfds = open_pidfds();
  uint64_t token = rt->watch(a, record(ra));
  rt->watch(b, record(rb));
  CHECK(open_pidfds() == pidfds);  // our children: the reaper's pidfd serves the watch
  rt->unwatch(token);
  rt->unwatch(token);       // twice: harmless
  rt->unwatch(987654321);   // unknown: harmless
  write_file(dir.path / "go-a", "");
  REQUIRE(eventually([&] { return rt->inspect(a).state == instance_state::exited; }));
  // b ends after a: its callback comes after the one a would have had.
  write_file(dir.path / "go-b", "");
  REQUIRE(eventually([&] { return rb->count() == 1; }));
  CHECK(ra->count() == 0);
}

TEST_CASE("process_runtime: a second watch of a child replaces the first", "[process_runtime]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string());
  instance_ref ref;
  REQUIRE(rt->start(until_go(dir, "go", 6), &ref));
  auto first = std::make_shared<recorder>();
  auto second = std::make_shared<recorder>();
  uint64_t t1 = rt->watch(ref, record(first));
  uint64_t t2 = rt->watch(ref, record(second));
  CHECK(t1 != t2);
  write_file(dir.path / "go", "");
  REQUIRE(eventually([&] { return second->count() == 1; }));
  CHECK(second->first().exit_code == 6);
  std::this_thread::sleep_for(300ms);
  CHECK(first->count() == 0);
  CHECK(second->count() == 1);
}

TEST_CASE("process_runtime: watch of an ended or unknown instance fires at once", "[process_runtime]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string());
  instance_ref ref;
  REQUIRE(rt->start(sh_spec(dir, "exit 4"), &ref));
  REQUIRE(eventually([&] { return rt->inspect(ref).state == instance_state::exited; }));
  auto r = std::make_shared<recorder>();
  rt->watch(ref, record(r));
  REQUIRE(r->count() == 1);  // before watch() returned
  CHECK(r->thread() == std::this_thread::get_id());
  CHECK(r->first().exit_code == 4);

  for (std::string id : {"", "garbage", "12:34", "-5:1:1", "1:1:1", "999999999:1:999999999"}) {
    INFO(id);
    auto g = std::make_shared<recorder>();
    rt->watch(instance_ref{id, 0, 0}, record(g));
    REQUIRE(g->count() == 1);
    CHECK(g->first().state == instance_state::gone);
  }
  // Same pid, another start time: someone else now, so gone.
  int pid = 0, pgid = 0;
  uint64_t start = 0;
  instance_ref live;
  REQUIRE(rt->start(sh_spec(dir, "exec sleep 30"), &live));
  REQUIRE(parse_process_instance_id(live.id, &pid, &start, &pgid));
  auto other = std::make_shared<recorder>();
  rt->watch(instance_ref{process_instance_id(pid, start + 1, pgid), 0, pid}, record(other));
  REQUIRE(other->count() == 1);
  CHECK(other->first().state == instance_state::gone);
  REQUIRE(rt->stop(live, 2000ms));
}

TEST_CASE("process_runtime: a malformed id is gone and stops fine", "[process_runtime]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string());
  for (std::string id : {"", "x", "1:2", "1:2:3:4", "0:5:0", "1:100:1", "abc:1:2"}) {
    INFO(id);
    instance_ref ref{id, 80, 0};
    CHECK(rt->inspect(ref).state == instance_state::gone);
    CHECK(rt->inspect(ref).describe() == "gone");
    CHECK(rt->stop(ref, 10ms));
    resource_usage u;
    CHECK(rt->usage(ref, &u).which() == status::code::not_found);
  }
}

TEST_CASE("process_runtime: describe", "[process_runtime]") {
  instance_status s;
  CHECK(s.describe() == "gone");
  s.state = instance_state::running;
  CHECK(s.describe() == "running");
  s.state = instance_state::exited;
  CHECK(s.describe() == "exited");
  s.exit_code = 0;
  CHECK(s.describe() == "exited with code 0");
  s.exit_code = -1;
  s.signal = 9;
  CHECK(s.describe() == "killed by signal 9");
}

TEST_CASE("process_runtime: list finds instances by label, and old ones by folder", "[process_runtime]") {
  temp_dir dir;
  const std::string data = dir.path.string();
  auto rt = make_process_runtime(data);
  const std::string pa = "lista" + std::to_string(::getpid()), pb = "listb" + std::to_string(::getpid());
  const std::string rel = "r" + std::to_string(::getpid());
  std::vector<instance_ref> started;
  auto start = [&](instance_labels labels, const std::string& script, uint16_t port = 0, fs::path workdir = {}) {
    instance_spec spec = sh_spec(dir, script);
    spec.labels = std::move(labels);
    spec.port = port;
    if (!workdir.empty()) spec.workdir = workdir;
    instance_ref ref;
    REQUIRE(rt->start(spec, &ref));
    started.push_back(ref);
    return ref;
  };
  // Two processes in one group: one ref, the leader's.
  auto a_prod = start({pa, "production", rel}, "sleep 30 & exec sleep 30", 4100);
  auto a_preview = start({pa, "preview", ""}, "exec sleep 30");
  auto b_prod = start({pb, "production", rel}, "exec sleep 30");
  // The leader exits, its background child stays in the group: the child stands for it.
  auto build_leader = start({pa, "build", ""}, "sleep 30 & echo $! > build.pid");
  int build_member = read_pid_file(dir / "build.pid");
  REQUIRE(build_member > 0);
  REQUIRE(eventually([&] { return rt->inspect(build_leader).state == instance_state::exited; }));
  instance_ref a_build = ref_from_proc(build_member);
  // Started by an older berth, without labels: found by its folder. And an unrelated one.
  auto paths = paths_for(data, pa);
  fs::create_directories(paths.preview);
  auto legacy = start({}, "exec sleep 30", 0, paths.preview);
  auto unrelated = start({}, "exec sleep 30");
  // Same labels, started by a berth with another data dir: not ours.
  temp_dir other_data;
  auto other_rt = make_process_runtime(other_data.path.string());
  instance_ref other;
  instance_spec other_spec = sh_spec(dir, "exec sleep 30");
  other_spec.labels = {pa, "production", rel};
  REQUIRE(other_rt->start(other_spec, &other));
  // Only a member carries labels: the group is found, and its leader stands for it.
  auto mixed = start({}, "env BERTH_PROJECT=" + pa + " BERTH_ENV=worker BERTH_DATA_DIR=" +
                            fs::canonical(data).string() + " sleep 30 & exec sleep 30");
  auto group_size = [&](int pgid) {
    return count_dir("/proc", [&](const std::string& name) {
      stat_fields st;
      return std::isdigit(static_cast<unsigned char>(name[0])) && read_stat(std::stoi(name), &st) &&
             st.pgrp == pgid && st.state != 'Z';
    });
  };
  REQUIRE(eventually([&] { return group_size(a_prod.pid) == 2 && group_size(mixed.pid) == 2; }));
  // Bounded wait: a process in the middle of its exec shows no environment for a moment.
  const std::set<std::string> all_of_a{a_prod.id, a_preview.id, a_build.id, legacy.id, mixed.id};
  REQUIRE(eventually([&] { return ids_of(rt->list({pa, "", ""})) == all_of_a; }));
  CHECK(ids_of(rt->list({pa, "worker", ""})) == std::set<std::string>{mixed.id});
  CHECK(ids_of(other_rt->list({pa, "", ""})) == std::set<std::string>{other.id});
  CHECK(ids_of(rt->list({pa, "production", ""})) == std::set<std::string>{a_prod.id});
  CHECK(ids_of(rt->list({pa, "production", rel})) == std::set<std::string>{a_prod.id});
  CHECK(rt->list({pa, "production", rel + "x"}).empty());
  CHECK(ids_of(rt->list({pa, "preview", ""})) == std::set<std::string>{a_preview.id, legacy.id});
  CHECK(ids_of(rt->list({pb, "", ""})) == std::set<std::string>{b_prod.id});
  auto by_release = ids_of(rt->list({"", "", rel}));
  CHECK(by_release.count(a_prod.id) == 1);
  CHECK(by_release.count(b_prod.id) == 1);
  CHECK(by_release.count(a_preview.id) == 0);
  CHECK(by_release.count(legacy.id) == 0);  // no folder without a project
  auto all = ids_of(rt->list({}));
  CHECK(all.count(unrelated.id) == 0);
  CHECK(all.count(legacy.id) == 0);
  CHECK(all.count(a_prod.id) == 1);
  auto prod = rt->list({pa, "production", ""});
  REQUIRE(prod.size() == 1);
  CHECK(prod[0].pid == a_prod.pid);
  CHECK(prod[0].port == 4100);  // PORT from its environment

  started.push_back(a_build);
  for (auto& ref : started) CHECK(rt->stop(ref, 2000ms));
  CHECK(other_rt->stop(other, 2000ms));
  CHECK(rt->list({pa, "", ""}).empty());
}

TEST_CASE("process_runtime: usage sums the group, not_found once stopped", "[process_runtime]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string());
  instance_ref ref;
  REQUIRE(rt->start(sh_spec(dir, "sleep 30 & exec sleep 30"), &ref));
  resource_usage u;
  REQUIRE(eventually([&] { return rt->usage(ref, &u) && u.processes == 2; }));
  CHECK(u.rss_bytes > 0);
  CHECK(u.cpu_seconds >= 0);
  REQUIRE(rt->stop(ref, 2000ms));
  CHECK(rt->usage(ref, &u).which() == status::code::not_found);
}

TEST_CASE("process_runtime: logs are the tail of the instance's log", "[process_runtime]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string());
  instance_spec spec = sh_spec(dir, "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2");
  instance_ref ref;
  REQUIRE(rt->start(spec, &ref));
  REQUIRE(eventually([&] { return rt->inspect(ref).state == instance_state::exited; }));
  CHECK(rt->logs(spec, ref, 3) == std::vector<std::string>{"line 4", "line 5", "oops"});
  CHECK(rt->logs(spec, ref, 100).size() == 6);
  spec.log.clear();
  CHECK(rt->logs(spec, ref, 3).empty());
  spec.log = dir.path / "missing.log";
  CHECK(rt->logs(spec, ref, 3).empty());
}

TEST_CASE("process_runtime: 50 watches add no thread", "[process_runtime]") {
  temp_dir dir;
  auto rt = make_process_runtime(dir.path.string());
  const size_t threads_before = thread_count();
  auto r = std::make_shared<recorder>();
  std::vector<instance_ref> refs(50);
  for (int i = 0; i < 50; ++i) {
    REQUIRE(rt->start(sh_spec(dir, "exit " + std::to_string(i)), &refs[i]));
    rt->watch(refs[i], record(r));
  }
  REQUIRE(eventually([&] { return r->count() == 50; }));
  std::set<int> codes;
  {
    std::lock_guard<std::mutex> lock(r->mu);
    for (auto& s : r->calls) codes.insert(s.exit_code);
  }
  CHECK(codes.size() == 50);
  CHECK(*codes.begin() == 0);
  CHECK(*codes.rbegin() == 49);
  CHECK(thread_count() <= threads_before + 1);  // the reaper thread, if it was not there yet
}
