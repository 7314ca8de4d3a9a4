#include <catch2/catch.hpp>

#include "tests/unit/support.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/process/process_driver.hpp"

using namespace berth;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

extern char** environ;

using berth::test::read_file;
using berth::test::read_stat;
using berth::test::stat_fields;
using berth::test::temp_dir;
using berth::test::write_file;

namespace {

using steady = std::chrono::steady_clock;

bool wait_for_content(const std::string& path, const std::string& needle,
                      std::chrono::milliseconds timeout = 5000ms) {
  auto deadline = steady::now() + timeout;
  while (steady::now() < deadline) {
    if (read_file(path).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

int read_int_file(const std::string& path) {
  std::string s = read_file(path);
  return s.empty() ? 0 : std::atoi(s.c_str());
}


template <class Pred>
std::vector<int> scan_proc(Pred pred) {
  std::vector<int> out;
  DIR* d = ::opendir("/proc");
  while (dirent* e = d ? ::readdir(d) : nullptr) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int pid = std::atoi(e->d_name);
    stat_fields st;
    if (read_stat(pid, &st) && pred(st)) out.push_back(pid);
  }
  if (d) ::closedir(d);
  return out;
}

// Members of the group that are still running (zombies waiting for init excluded).
std::vector<int> live_group_members(int pgid) {
  return scan_proc([&](const stat_fields& s) { return s.pgrp == pgid && s.state != 'Z' && s.state != 'X'; });
}

std::vector<int> zombie_children() {
  int self = ::getpid();
  return scan_proc([&](const stat_fields& s) { return s.ppid == self && s.state == 'Z'; });
}

bool pid_live(int pid) {
  stat_fields st;
  return read_stat(pid, &st) && st.state != 'Z' && st.state != 'X';
}

bool group_gone(int pgid) { return ::kill(-pgid, 0) == -1 && errno == ESRCH; }

bool eventually(std::function<bool()> pred, std::chrono::milliseconds timeout) {
  auto deadline = steady::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (steady::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

process_spec sh(const std::string& script, const temp_dir& dir) {
  process_spec spec;
  spec.argv = {"sh", "-c", script};
  spec.cwd = dir.path.string();
  spec.stdout_path = dir / "out.log";
  spec.stderr_path = dir / "err.log";
  return spec;
}

long long ms_since(steady::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
}

}  // namespace

TEST_CASE("process: start writes stdout/stderr logs, passes env and cwd", "[process]") {
  temp_dir dir;
  fs::create_directories(dir.path / "work dir");
  write_file(dir / "out.log", "old line\n");  // logs are appended to, not truncated
  process_driver d;
  process_spec spec;
  spec.argv = {"sh", "-c", "echo out:$PORT; echo err:$HOST >&2; pwd"};
  spec.cwd = dir / "work dir";
  spec.env = {{"PORT", "4123"}, {"HOST", "127.0.0.1"}};
  spec.stdout_path = dir / "out.log";
  spec.stderr_path = dir / "err.log";
  process_handle h;
  REQUIRE(d.start(spec, &h));
  CHECK(h.pid > 0);
  CHECK(h.pgid == h.pid);
  CHECK(h.start_time > 0);
  auto info = d.wait(h, 5000ms);
  REQUIRE(info.status == process_status::exited);
  CHECK(info.exit_code == 0);
  CHECK(info.term_signal == 0);
  CHECK(read_file(dir / "out.log") ==
        "old line\nout:4123\n" + fs::canonical(dir.path / "work dir").string() + "\n");
  CHECK(read_file(dir / "err.log") == "err:127.0.0.1\n");
}

TEST_CASE("process: python3 child, shared log file, minimal inherited env", "[process]") {
  temp_dir dir;
  ::setenv("BERTH_PROC_TEST_NOT_INHERITED", "leak", 1);
  process_driver d;
  process_spec spec;
  spec.argv = {"python3", "-c",
               "import os, sys\n"
               "print('port', os.environ['PORT'], flush=True)\n"
               "print('leak', os.environ.get('BERTH_PROC_TEST_NOT_INHERITED', 'absent'), flush=True)\n"
               "print('path', 'yes' if os.environ.get('PATH') else 'no', flush=True)\n"
               "print('to-stderr', file=sys.stderr, flush=True)\n"
               "print('cwd', os.getcwd(), flush=True)\n"};
  spec.cwd = dir.path.string();
  spec.env = {{"PORT", "5555"}};
  spec.stdout_path = spec.stderr_path = dir / "app.log";
  int code = -1;
  REQUIRE(d.run(spec, 10000ms, &code));
  ::unsetenv("BERTH_PROC_TEST_NOT_INHERITED");
  CHECK(code == 0);
  std::string log = read_file(dir / "app.log");
  CHECK(log.find("port 5555\n") != std::string::npos);
  CHECK(log.find("leak absent\n") != std::string::npos);
  CHECK(log.find("path yes\n") != std::string::npos);
  CHECK(log.find("to-stderr\n") != std::string::npos);
  CHECK(log.find("cwd " + fs::canonical(dir.path).string() + "\n") != std::string::npos);
}

TEST_CASE("process: stdin is /dev/null and inherited fds are closed", "[process]") {
  temp_dir dir;
  int leaked = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  REQUIRE(leaked >= 0);
  REQUIRE(::dup2(leaked, 57) == 57);
  ::close(leaked);
  process_driver d;
  int code = -1;
  REQUIRE(d.run(sh("ls /proc/$$/fd; echo stdin=$(readlink /proc/$$/fd/0)", dir), 5000ms, &code));
  ::close(57);
  CHECK(code == 0);
  std::string out = read_file(dir / "out.log");
  CHECK(out.find("stdin=/dev/null") != std::string::npos);
  CHECK(out.find("\n57\n") == std::string::npos);
  CHECK(out.rfind("0\n1\n2\n", 0) == 0);
}

TEST_CASE("process: exec failure is an error status and leaves no process", "[process]") {
  temp_dir dir;
  process_driver d;
  process_handle h;

  process_spec missing;
  missing.argv = {"berth-no-such-program-4711", "--flag"};
  auto s = d.start(missing, &h);
  CHECK_FALSE(s);
  CHECK(s.which() == status::code::not_found);
  CHECK(s.message().find("No such file") != std::string::npos);
  CHECK(h.pid == 0);

  missing.argv = {"/nonexistent/dir/prog"};
  s = d.start(missing, &h);
  CHECK(s.which() == status::code::not_found);
  CHECK(h.pid == 0);

  process_spec bad_cwd = sh("echo should-not-run", dir);
  bad_cwd.cwd = dir / "missing-dir";
  s = d.start(bad_cwd, &h);
  CHECK(s.which() == status::code::not_found);
  CHECK(s.message().find("chdir") != std::string::npos);
  CHECK(read_file(dir / "out.log").empty());

  write_file(dir / "not-executable", "#!/bin/sh\necho hi\n");
  ::chmod((dir / "not-executable").c_str(), 0644);
  process_spec noexec;
  noexec.argv = {dir / "not-executable"};
  s = d.start(noexec, &h);
  CHECK_FALSE(s);
  CHECK(s.message().find("Permission denied") != std::string::npos);

  process_spec empty;
  CHECK(d.start(empty, &h).which() == status::code::invalid_argument);
  process_spec bad_env = sh("true", dir);
  bad_env.env = {{"A=B", "x"}};
  CHECK(d.start(bad_env, &h).which() == status::code::invalid_argument);

  process_spec bad_log = sh("true", dir);
  bad_log.stdout_path = dir / "no-such-dir/out.log";
  CHECK(d.start(bad_log, &h).which() == status::code::io_error);

  CHECK(h.pid == 0);
  CHECK(zombie_children().empty());  // the failed children were reaped by start()
}

TEST_CASE("process: exited children are reaped without being asked", "[process]") {
  temp_dir dir;
  process_driver d;
  process_handle h;
  REQUIRE(d.start(sh("exit 5", dir), &h));
  // Nobody calls inspect/wait: the reaper must still collect the child.
  CHECK(eventually([&] { return !fs::exists("/proc/" + std::to_string(h.pid)); }, 3000ms));
  auto info = d.inspect(h);
  CHECK(info.status == process_status::exited);
  CHECK(info.exit_code == 5);
  CHECK_FALSE(d.is_ours(h));
}

TEST_CASE("process: stop with SIGTERM honoured stops the whole group", "[process]") {
  temp_dir dir;
  process_driver d;
  process_handle h;
  // A graceful parent: on TERM it waits for its child, then exits 0.
  REQUIRE(d.start(sh("trap 'wait $c; exit 0' TERM; sleep 30 & c=$!; echo $c > gc.pid; echo ready; wait",
                     dir),
                  &h));
  REQUIRE(wait_for_content(dir / "out.log", "ready"));
  int gc = read_int_file(dir / "gc.pid");
  REQUIRE(gc > 0);
  stat_fields gst;
  REQUIRE(read_stat(gc, &gst));
  CHECK(gst.pgrp == h.pgid);  // the grandchild is in the group
  CHECK(d.inspect(h).status == process_status::running);
  // The backgrounded sleep must have exec'd first: a SIGTERM that reaches the shell's forked
  // child before its exec is lost (dash), and the graceful parent would wait for it for ever.
  REQUIRE(eventually([&] { return read_file("/proc/" + std::to_string(gc) + "/comm") == "sleep\n"; }, 5000ms));

  auto t0 = steady::now();
  REQUIRE(d.stop(h, 5000ms));
  CHECK(ms_since(t0) < 2000);  // did not need the grace
  CHECK(group_gone(h.pgid));
  CHECK(::kill(gc, 0) == -1);
  auto info = d.inspect(h);
  CHECK(info.status == process_status::exited);
  CHECK(info.exit_code == 0);
  // Stopping again is fine.
  CHECK(d.stop(h, 100ms));
}

TEST_CASE("process: a process ignoring SIGTERM is SIGKILLed after the grace, with its group",
          "[process]") {
  temp_dir dir;
  process_driver d;
  process_handle h;
  REQUIRE(d.start(sh("trap '' TERM; sleep 30 & echo $! > gc.pid; echo ready; wait", dir), &h));
  REQUIRE(wait_for_content(dir / "out.log", "ready"));
  int gc = read_int_file(dir / "gc.pid");
  REQUIRE(gc > 0);

  auto t0 = steady::now();
  REQUIRE(d.stop(h, 400ms));
  auto elapsed = ms_since(t0);
  CHECK(elapsed >= 390);
  CHECK(elapsed < 3000);
  CHECK(live_group_members(h.pgid).empty());
  CHECK_FALSE(pid_live(gc));
  auto info = d.inspect(h);
  CHECK(info.status == process_status::exited);
  CHECK(info.term_signal == SIGKILL);
  // The grandchild, orphaned, may stay a zombie until init reaps it; then the group is gone.
  CHECK(eventually([&] { return group_gone(h.pgid); }, 6000ms));
}

TEST_CASE("process: as a subreaper, stop also reaps orphaned group members", "[process]") {
  temp_dir dir;
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  process_driver d;
  process_handle h;
  REQUIRE(d.start(sh("trap '' TERM; sleep 30 & echo $! > gc.pid; echo ready; wait", dir), &h));
  REQUIRE(wait_for_content(dir / "out.log", "ready"));
  int gc = read_int_file(dir / "gc.pid");
  REQUIRE(d.stop(h, 100ms));
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  CHECK(group_gone(h.pgid));
  CHECK(::kill(gc, 0) == -1);
  CHECK(zombie_children().empty());
}

TEST_CASE("process: inspect follows running -> exited, and rejects a reused pid", "[process]") {
  temp_dir dir;
  process_driver d;
  process_handle h;
  REQUIRE(d.start(sh("while [ ! -e go ]; do sleep 0.01; done; exit 7", dir), &h));
  auto info = d.inspect(h);
  CHECK(info.status == process_status::running);
  CHECK(d.is_ours(h));

  // Same pid, different start time: a different process as far as berth is concerned.
  process_handle other = h;
  other.start_time = h.start_time + 1;
  CHECK(d.inspect(other).status == process_status::not_found);
  CHECK_FALSE(d.is_ours(other));
  CHECK(d.wait(other, 1000ms).status == process_status::not_found);
  REQUIRE(d.stop(other, 100ms));           // must not touch the real process
  CHECK(d.inspect(h).status == process_status::running);

  write_file(dir / "go", "");
  info = d.wait(h, 5000ms);
  CHECK(info.status == process_status::exited);
  CHECK(info.exit_code == 7);
  info = d.inspect(h);
  CHECK(info.status == process_status::exited);
  CHECK(info.exit_code == 7);
  CHECK_FALSE(d.is_ours(h));

  process_handle nobody;
  CHECK(d.inspect(nobody).status == process_status::not_found);
}

TEST_CASE("process: processes that are not our children are watched through /proc only",
          "[process]") {
  temp_dir dir;
  // Started by the test itself (as if by a previous berth): the driver must not reap it.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  pid_t pid = 0;
  char* argv[] = {const_cast<char*>("sleep"), const_cast<char*>("30"), nullptr};
  REQUIRE(::posix_spawnp(&pid, "sleep", nullptr, &attr, argv, environ) == 0);
  posix_spawnattr_destroy(&attr);
  stat_fields st;
  REQUIRE(read_stat(pid, &st));
  process_handle h{pid, st.start_time, pid};

  process_driver d;
  CHECK(d.is_ours(h));
  CHECK(d.inspect(h).status == process_status::running);
  auto t0 = steady::now();
  CHECK(d.wait(h, 150ms).status == process_status::running);
  CHECK(ms_since(t0) >= 140);

  std::thread killer([pid] {
    std::this_thread::sleep_for(50ms);
    ::kill(pid, SIGTERM);
  });
  auto info = d.wait(h, 5000ms);
  killer.join();
  CHECK(info.status == process_status::exited);  // a zombie of ours (the test's), not reaped
  CHECK(info.term_signal == SIGTERM);
  int ws = 0;
  REQUIRE(::waitpid(pid, &ws, 0) == pid);  // still ours to reap
  CHECK(WIFSIGNALED(ws));
  CHECK(d.inspect(h).status == process_status::not_found);

  // stop() on an adopted process: signals it, leaves the reaping to its parent.
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  REQUIRE(::posix_spawnp(&pid, "sleep", nullptr, &attr, argv, environ) == 0);
  posix_spawnattr_destroy(&attr);
  REQUIRE(read_stat(pid, &st));
  h = process_handle{pid, st.start_time, pid};
  REQUIRE(d.stop(h, 2000ms));
  REQUIRE(::waitpid(pid, &ws, 0) == pid);
  CHECK(WIFSIGNALED(ws));
  CHECK(WTERMSIG(ws) == SIGTERM);
}

TEST_CASE("process: wait times out without busy-spinning", "[process]") {
  temp_dir dir;
  process_driver d;
  process_handle h;
  REQUIRE(d.start(sh("exec sleep 30", dir), &h));
  std::clock_t c0 = std::clock();
  auto t0 = steady::now();
  auto info = d.wait(h, 300ms);
  auto elapsed = ms_since(t0);
  double cpu_ms = 1000.0 * static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
  CHECK(info.status == process_status::running);
  CHECK(elapsed >= 290);
  CHECK(elapsed < 1500);
  CHECK(cpu_ms < 100);  // blocked, not spinning
  REQUIRE(d.stop(h, 1000ms));
  info = d.inspect(h);
  CHECK(info.status == process_status::exited);
  CHECK(info.term_signal == SIGTERM);
}

TEST_CASE("process: run returns exit codes and enforces its timeout", "[process]") {
  temp_dir dir;
  process_driver d;
  int code = -1;
  bool timed_out = true;
  REQUIRE(d.run(sh("exit 3", dir), 5000ms, &code, &timed_out));
  CHECK(code == 3);
  CHECK_FALSE(timed_out);

  REQUIRE(d.run(sh("kill -9 $$", dir), 5000ms, &code));
  CHECK(code == 128 + SIGKILL);

  auto t0 = steady::now();
  auto s = d.run(sh("echo $$ > pid; exec sleep 5", dir), 200ms, &code, &timed_out);
  auto elapsed = ms_since(t0);
  CHECK_FALSE(s);
  CHECK(timed_out);
  CHECK(s.message().find("timeout") != std::string::npos);
  CHECK(elapsed >= 190);
  CHECK(elapsed < 1000);
  int pid = read_int_file(dir / "pid");
  REQUIRE(pid > 0);
  CHECK(::kill(pid, 0) == -1);  // stopped and reaped
  CHECK(group_gone(pid));

  // Background children left behind by a finished command are stopped too.
  REQUIRE(d.run(sh("sleep 30 & echo $! > bg.pid; exit 0", dir), 5000ms, &code));
  CHECK(code == 0);
  int bg = read_int_file(dir / "bg.pid");
  REQUIRE(bg > 0);
  CHECK_FALSE(pid_live(bg));

  s = d.run(process_spec{{"berth-no-such-program-4711"}, "", {}, "", ""}, 1000ms, &code, &timed_out);
  CHECK(s.which() == status::code::not_found);
  CHECK_FALSE(timed_out);
}

TEST_CASE("process: concurrent starts from several threads", "[process]") {
  temp_dir dir;
  process_driver d;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 8; ++i) {
        int want = t * 10 + i;
        process_spec spec;
        spec.argv = {"sh", "-c", "exit $CODE"};
        spec.env = {{"CODE", std::to_string(want)}};
        int code = -1;
        if (!d.run(spec, 5000ms, &code) || code != want) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  CHECK(zombie_children().empty());
}

TEST_CASE("process: tail returns the last n lines", "[process]") {
  temp_dir dir;
  std::string path = dir / "log";
  std::string content;
  for (int i = 1; i <= 100; ++i) content += "line " + std::to_string(i) + "\n";
  write_file(path, content);
  auto lines = process_driver::tail(path, 3);
  CHECK(lines == std::vector<std::string>{"line 98", "line 99", "line 100"});
  CHECK(process_driver::tail(path, 1000).size() == 100);
  CHECK(process_driver::tail(path, 1000).front() == "line 1");
  CHECK(process_driver::tail(path, 0).empty());

  write_file(path, "a\n\nb\nno newline at end");
  CHECK(process_driver::tail(path, 2) == std::vector<std::string>{"b", "no newline at end"});
  CHECK(process_driver::tail(path, 10) == std::vector<std::string>{"a", "", "b", "no newline at end"});

  // Lines spanning chunk boundaries (the reader goes backwards 64 KiB at a time).
  std::string big;
  for (int i = 0; i < 50; ++i) big += std::string(10000, static_cast<char>('a' + i % 26)) + "\n";
  write_file(path, big);
  lines = process_driver::tail(path, 20);
  REQUIRE(lines.size() == 20);
  for (int i = 0; i < 20; ++i) CHECK(lines[i] == std::string(10000, static_cast<char>('a' + (30 + i) % 26)));

  write_file(path, "");
  CHECK(process_driver::tail(path, 5).empty());
  CHECK(process_driver::tail(dir / "missing", 5).empty());
}
