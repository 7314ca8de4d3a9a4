// The process driver's sandbox (runtime/process/sandbox.hpp), the uid pool of the projects
// (runtime/process/uid_pool.hpp), the fold of a project's uid and the --sandbox options. The
// runtime cases run real processes under the real bubblewrap; every wait is a bounded poll.
#include <catch2/catch.hpp>

#include "tests/unit/support.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include <CLI/CLI.hpp>

#include "config/config.hpp"
#include "messages/project_state.hpp"
#include "runtime/process/process_runtime.hpp"
#include "runtime/process/sandbox.hpp"
#include "runtime/process/uid_pool.hpp"

using namespace berth;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using berth::test::read_file;
using berth::test::temp_dir;
using berth::test::write_file;

namespace {

bool has(const std::vector<std::string>& argv, const std::vector<std::string>& seq) {
  return std::search(argv.begin(), argv.end(), seq.begin(), seq.end()) != argv.end();
}

sandbox_options root_options() {
  auto o = make_sandbox_options(true);
  o.as_root = true;
  return o;
}

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 10s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return f();
}

}  // namespace

TEST_CASE("uid pool: lowest free uid, one per project, held from the log, freed by give_back", "[sandbox]") {
  uid_pool pool(100, 102);
  CHECK(pool.take("a") == 100u);
  CHECK(pool.take("a") == 100u);  // a project keeps the uid it has
  CHECK(pool.take("b") == 101u);
  CHECK_FALSE(pool.hold("c", 101));  // b's: c must get another
  CHECK(pool.hold("c", 102));
  CHECK_FALSE(pool.take("d").has_value());  // the range is used up
  pool.give_back("a");
  CHECK(pool.of("a") == 0u);
  CHECK(pool.take("d") == 100u);
  CHECK(pool.of("d") == 100u);
}

TEST_CASE("sandbox uid: recorded with the project's creation or later, forgotten with its deletion", "[sandbox]") {
  auto m = parse_manifest(nlohmann::json{{"name", "shop"}, {"source", {{"path", "/srv/shop"}}}}).value;
  auto event = [](uint64_t seq, const char* type, std::string data) {
    event_record e;
    e.seq = seq;
    e.stream = "project/shop";
    e.type = type;
    e.data = std::move(data);
    return e;
  };
  project_record p;
  fold(p, event(1, ev::project_created, project_created_data(m, 8000, 4000, 61200, 61200)));
  CHECK(p.sandbox_uid == 61200u);
  CHECK(p.sandbox_gid == 61200u);
  fold(p, event(2, ev::project_deleted, "{}"));
  CHECK(p.sandbox_uid == 0u);
  fold(p, event(3, ev::project_created, project_created_data(m, 8000, 4000)));  // an older berth's
  CHECK(p.sandbox_uid == 0u);
  fold(p, event(4, ev::sandbox_assigned, sandbox_assigned_data(61300, 61300)));
  CHECK(p.sandbox_uid == 61300u);
  CHECK(p.exists);
}

TEST_CASE("config: --sandbox and --sandbox-uids", "[sandbox][config]") {
  auto load = [](std::vector<std::string> args) {
    config cfg;
    config_loader loader{cfg};
    CLI::App app;
    loader.add_options(app);
    std::reverse(args.begin(), args.end());
    app.parse(args);
    loader.resolve();
    return cfg;
  };
  auto d = load({});
  CHECK(d.deploy.sandbox.enabled());
  CHECK(d.deploy.sandbox.uid_lo == 61184u);
  CHECK(d.deploy.sandbox.uid_hi == 65519u);
  auto c = load({"--sandbox", "off", "--sandbox-uids", "70000-70009"});
  CHECK_FALSE(c.deploy.sandbox.enabled());
  CHECK(c.deploy.sandbox.uid_lo == 70000u);
  CHECK(c.deploy.sandbox.uid_hi == 70009u);
  CHECK_THROWS(load({"--sandbox", "docker"}));
  CHECK_THROWS(load({"--sandbox-uids", "0-10"}));  // never root's
  CHECK_THROWS(load({"--sandbox-uids", "70010-70000"}));
  CHECK_THROWS(load({"--sandbox-uids", "70000"}));
  CHECK_THROWS(load({"--sandbox-uids", "70000-7x"}));
}

TEST_CASE("sandbox argv: the release read-only, its folders writable, the way to them traversable, setpriv as root",
          "[sandbox]") {
  sandbox_spec s;
  s.enabled = true;
  s.id = {61200, 61201};
  s.read_only = "/tmp/d/projects/shop/production/abc";
  s.data = "/tmp/d/projects/shop/data/production";
  auto argv = sandbox_argv(root_options(), s, s.read_only, {"python3", "server.py"});
  CHECK(has(argv, {"--unshare-pid"}));
  CHECK_FALSE(has(argv, {"--unshare-user"}));  // root: real uids, set by setpriv
  CHECK(has(argv, {"--ro-bind", "/usr", "/usr"}));
  CHECK(has(argv, {"--ro-bind", s.read_only.string(), s.read_only.string()}));
  CHECK(has(argv, {"--bind", s.data.string(), s.data.string()}));
  CHECK(has(argv, {"--perms", "1777", "--tmpfs", "/tmp"}));
  CHECK(has(argv, {"--perms", "0755", "--dir", "/tmp/d/projects/shop"}));
  CHECK_FALSE(has(argv, {"--dir", "/tmp"}));
  CHECK(has(argv, {"--chdir", s.read_only.string(), "--"}));
  CHECK(has(argv, {"--reuid=61200", "--regid=61201", "--clear-groups"}));
  CHECK(has(argv, {"--no-new-privs", "--", "python3", "server.py"}));
  // The data dir itself is never bound: only the project's folders.
  CHECK_FALSE(has(argv, {"/tmp/d", "/tmp/d"}));
  CHECK_FALSE(has(argv, {"--bind", "/tmp/d/projects/shop", "/tmp/d/projects/shop"}));

  auto user = root_options();
  user.as_root = false;
  auto unprivileged = sandbox_argv(user, s, s.read_only, {"python3", "server.py"});
  CHECK(has(unprivileged, {"--unshare-user"}));
  CHECK(std::find(unprivileged.begin(), unprivileged.end(), user.setpriv) == unprivileged.end());

  auto env = sandbox_env(s);
  CHECK(env.at("HOME") == s.data.string());
  CHECK(env.at("BERTH_APP_DATA") == s.data.string());
  CHECK(env.at("TMPDIR") == "/tmp");
}

TEST_CASE("sandbox: the start-up check says when bubblewrap is missing", "[sandbox]") {
  auto o = make_sandbox_options(true, "/nonexistent/bwrap");
  CHECK_FALSE(sandbox_available(o));
  auto s = check_sandbox(o, 61190);
  CHECK(s.which() == status::code::not_found);
  CHECK_THAT(s.message(), Catch::Contains("not installed"));
}

TEST_CASE("sandbox: a program is looked up where the sandbox sees it", "[sandbox]") {
  temp_dir tmp;
  write_file(tmp / "app/run.sh", "#!/bin/sh\n", 0755);
  write_file(tmp / "app/data.txt", "x", 0644);
  write_file(tmp / "elsewhere/tool", "#!/bin/sh\n", 0755);
  sandbox_spec s;
  s.enabled = true;
  s.read_only = tmp / "app";
  auto o = root_options();
  const std::string path = "/usr/bin:/bin";
  CHECK(find_sandboxed_program(o, s, "python3", s.read_only, path).is_ok());
  CHECK(find_sandboxed_program(o, s, "./run.sh", s.read_only, path).is_ok());
  CHECK(find_sandboxed_program(o, s, "/bin/sh", s.read_only, path).is_ok());
  auto missing = find_sandboxed_program(o, s, "no-such-program-xyz", s.read_only, path);
  CHECK(missing.which() == status::code::not_found);
  CHECK_THAT(missing.message(), Catch::Contains("No such file or directory"));
  // On the host, but not in the sandbox.
  CHECK(find_sandboxed_program(o, s, tmp / "elsewhere/tool", s.read_only, path).which() == status::code::not_found);
  CHECK(find_sandboxed_program(o, s, "./data.txt", s.read_only, path).which() == status::code::invalid_argument);
}

TEST_CASE("sandbox: a confined process sees its folders only and runs as the project's uid, stop reaches it",
          "[sandbox]") {
  auto options = make_sandbox_options(true);
  if (!check_sandbox(options, 61190).is_ok()) {
    WARN("bubblewrap does not work here: " << check_sandbox(options, 61190).message());
    return;
  }
  temp_dir tmp;
  ::chmod(tmp.path.c_str(), 0700);  // as the data dir will be
  write_file(tmp / "secret", "top secret", 0600);
  write_file(tmp / "release/app.sh",
             "trap 'echo term > \"$BERTH_APP_DATA/terminated\"; exit 0' TERM\n"
             "{ id -u; cat " + (tmp / "secret") + " 2>&1; ls /proc | grep -c '^[0-9]'; touch here 2>&1; } "
             "> \"$HOME/report\"\n"
             "while true; do sleep 0.05; done\n",
             0600);
  process_runtime rt(tmp / "data", "", options);
  instance_spec spec;
  spec.labels = {"shop", "production", "abc"};
  spec.workdir = tmp / "release";
  spec.command = {"sh", "app.sh"};
  spec.log = tmp / "out.log";
  spec.sandbox = {true, {61190, 61190}, tmp / "release", {}, tmp / "appdata"};
  instance_ref r;
  REQUIRE(rt.start(spec, &r).is_ok());
  auto report = tmp / "appdata/report";
  REQUIRE(eventually([&] { return read_file(report).find("here") != std::string::npos; }));
  auto seen = read_file(report);
  INFO(seen << "\n" << read_file(tmp / "out.log"));
  if (::geteuid() == 0) CHECK(seen.rfind("61190\n", 0) == 0);
  CHECK(seen.find("top secret") == std::string::npos);
  CHECK(seen.find("Read-only file system") != std::string::npos);
  // The labels stay on the process berth started, which list() finds.
  auto listed = rt.list({"shop", "production", ""});
  REQUIRE(listed.size() == 1);
  CHECK(listed.front().id == r.id);
  REQUIRE(rt.stop(r, 3000ms).is_ok());
  CHECK(read_file(tmp / "appdata/terminated") == "term\n");
  CHECK_FALSE(rt.inspect(r).running());
  CHECK(rt.list({"shop", "", ""}).empty());

  // A program the sandbox cannot see fails the start, as a missing one does without sandbox.
  spec.command = {tmp / "secret"};
  CHECK(rt.start(spec, &r).which() == status::code::not_found);
}

TEST_CASE("sandbox: when bwrap is killed, the app inside goes too, even if the exit is watched late", "[sandbox]") {
  auto options = make_sandbox_options(true);
  if (!check_sandbox(options, 61191).is_ok()) {
    WARN("bubblewrap does not work here");
    return;
  }
  temp_dir tmp;
  fs::create_directories(tmp / "release");
  process_runtime rt(tmp / "data", "", options);
  instance_spec spec;
  spec.labels = {"shop", "production", "abc"};
  spec.workdir = tmp / "release";
  spec.command = {"sh", "-c", "while true; do sleep 0.05; done"};
  spec.sandbox = {true, {61191, 61191}, tmp / "release", {}, tmp / "appdata"};
  instance_ref r;
  REQUIRE(rt.start(spec, &r).is_ok());
  auto group_alive = [&] { return ::kill(-r.pid, 0) == 0 && rt.list({"shop", "", ""}).size() == 1; };
  REQUIRE(eventually(group_alive));
  ::kill(r.pid, SIGKILL);  // bwrap only: its namespace's init and the app live on, for now
  REQUIRE(eventually([&] { return !rt.inspect(r).running(); }));
  std::atomic<bool> told{false};
  rt.watch(r, [&](const instance_status&) { told = true; });  // after the end: at once
  CHECK(told);
  CHECK(eventually([&] { return rt.list({"shop", "", ""}).empty(); }));
}
