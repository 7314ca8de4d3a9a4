// Failure containment (issue 13, item 8): a project that keeps failing while it starts is
// parked as broken while berth and the other projects go on, and comes back by itself once
// its cause is gone.
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/common/log_tamper.hpp"
#include "tests/integration/recovery_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Whether `name` is among /health's broken projects.
bool health_names_broken(server& srv, const std::string& name) {
  auto h = srv.health();
  if (!h.contains("broken_projects")) return false;
  for (auto& b : h["broken_projects"])
    if (b.value("name", "") == name) return h.value("status", "") == "degraded";
  return false;
}

// The project's GET once it answers status broken (the test fails if it does not within 15 s).
json wait_broken(site_env& e, const std::string& name) {
  json got;
  REQUIRE(eventually(
      [&] {
        auto r = e.api().get("/api/projects/" + name);
        got = r.body;
        return r.status == 200 && got.value("status", "") == "broken";
      },
      15s));
  return got;
}

}  // namespace

TEST_CASE("containment - a project whose folder cannot be written is parked as broken and recovers",
          "[integration][containment]") {
  site_env e("good", quick);
  auto bad_site = make_site(e.tmp, "bad-site", "b1");
  auto created = e.api().post("/api/projects", site_manifest("bad", bad_site));
  REQUIRE(created.status == 201);
  e.deploy_version("v1");

  // Stopped cleanly, then the folder it needs is made unwritable: .env becomes a directory,
  // so the project's start cannot write it.
  REQUIRE(e.srv->terminate(10s) == 0);
  auto env_path = e.srv->projects_dir() + "/bad/.env";
  fs::remove(env_path);
  fs::create_directories(env_path + "/blocker");
  e.srv->start();
  // Nothing of it runs, so it is dormant (no folder work at start): a command wakes it, and
  // its start fails on the folder.
  e.api().get("/api/projects/bad/production");

  // Parked as broken with its reason, in its GET, the list and /health.
  auto bad = wait_broken(e, "bad");
  INFO(bad.dump());
  CHECK(bad.value("reason", "").find(".env") != std::string::npos);
  CHECK(health_names_broken(*e.srv, "bad"));
  auto list = e.api().get("/api/projects");
  REQUIRE(list.status == 200);
  bool listed = false;
  for (auto& p : list.body.is_array() ? list.body : list.body.value("projects", json::array()))
    if (p.value("name", "") == "bad") listed = p.value("status", "") == "broken";
  CHECK(listed);
  auto refused = e.api().post("/api/projects/bad/deployments", std::string{});
  CHECK(refused.status == 503);
  CHECK(refused.is_json_error());

  // berth and the other project go on: it serves, and deploys.
  std::this_thread::sleep_for(2s);  // several retries with the quick backoff
  REQUIRE(e.srv->running());
  // It serves: what is asserted is the answer, not its latency (a loaded CI machine may take
  // the python app over fetch()'s default 1.5 s for one request).
  auto served = fetch(e.stable_port(), "/", 15s);
  INFO(served.describe());
  CHECK(served.body == "release v1\n");
  e.deploy_version("v2");

  // The cause goes: it comes back by itself, with one project_broken and one project_recovered.
  fs::remove_all(env_path);
  REQUIRE(eventually(
      [&] {
        auto r = e.api().get("/api/projects/bad");
        return r.status == 200 && !r.body.contains("status") && r.body.value("name", "") == "bad";
      },
      15s));
  CHECK(!health_names_broken(*e.srv, "bad"));
  CHECK(fs::is_regular_file(env_path));
  auto events = e.api().get("/api/projects/bad/events?limit=10000");
  REQUIRE(events.status == 200);
  auto list_of = events.body.is_object() && events.body.contains("events") ? events.body["events"] : events.body;
  CHECK(count_type(list_of, "project_broken") == 1);
  CHECK(count_type(list_of, "project_recovered") == 1);
  CHECK(e.audit_failure().empty());
  REQUIRE(e.srv->running());
}

namespace {

// A size-limited tmpfs mounted at `dir` for the test's life; unmounted (lazily, so a process
// still inside cannot keep it) on destruction, even when the test fails.
class tmpfs_mount {
 public:
  tmpfs_mount(const std::string& dir, const std::string& size) : dir_(dir) {
    fs::create_directories(dir);
    auto opts = "size=" + size;
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) == 0;
  }
  ~tmpfs_mount() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

// Writes 1 MB chunks into `path` until the disk refuses (ENOSPC).
void fill_disk(const std::string& path) {
  std::string chunk(1 << 20, 'x');
  FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size() && std::fflush(f) == 0) {
  }
  std::fclose(f);
}

json project_body(const std::string& name, const std::string& src) { return manifest_for(name, src); }

}  // namespace

TEST_CASE("containment - a project with a corrupt event is parked as broken, berth and the others go on",
          "[integration][containment]") {
  site_env e("good", quick);
  auto bad_site = make_site(e.tmp, "bad-site", "b1");
  REQUIRE(e.api().post("/api/projects", site_manifest("bad", bad_site)).status == 201);
  auto events = e.api().get("/api/projects/bad/events");
  REQUIRE(events.status == 200);
  uint64_t created_seq = events.body.at("events").at(0).at("seq");
  e.deploy_version("v1");

  // Stopped cleanly; then the stored bytes of bad's first event stop being an event.
  REQUIRE(e.srv->terminate(10s) == 0);
  berth::test::corrupt_event(e.srv->data_dir() + "/events", created_seq);
  e.srv->start();

  // The index comes from the snapshot berth wrote at its clean stop (checked against the chain
  // at its seq), so bad is dormant and nothing reads its damaged event until a command needs
  // its actor: that command fails, and bad is parked as broken.
  auto woken = e.api().post("/api/projects/bad/preview/start", std::string{});
  INFO(woken.describe());
  CHECK(woken.status >= 500);

  // berth is up, the good project serves and deploys, and the bad one is parked as broken.
  auto bad = wait_broken(e, "bad");
  INFO(bad.dump());
  CHECK(!bad.value("reason", "").empty());
  CHECK(health_names_broken(*e.srv, "bad"));
  std::this_thread::sleep_for(2s);  // several retries with the quick backoff
  REQUIRE(e.srv->running());
  // It serves: what is asserted is the answer, not its latency (a loaded CI machine may take
  // the python app over fetch()'s default 1.5 s for one request).
  auto served = fetch(e.stable_port(), "/", 15s);
  INFO(served.describe());
  CHECK(served.body == "release v1\n");
  e.deploy_version("v2");
  CHECK(fetch(e.stable_port()).body == "release v2\n");
  // Its folder is kept: the log still names the project, it is only unreadable.
  CHECK(fs::exists(e.srv->projects_dir() + "/bad"));
}

TEST_CASE("containment - a full disk refuses writes with 507, keeps serving reads and resumes by itself",
          "[integration][containment]") {
  if (::geteuid() != 0) {
    WARN("needs root to mount a tmpfs; skipped");
    return;
  }
  temp_dir tmp;
  auto src = tmp / "site";
  fs::create_directories(src);
  std::ofstream(src + "/index.html") << "hello\n";
  tmpfs_mount disk(tmp / "data", "24m");
  REQUIRE(disk.mounted());
  server_options opts;
  opts.extra_args = {"--switch-mode", "direct"};
  server srv(tmp.path(), opts);
  REQUIRE(srv.api().post("/api/projects", project_body("before", src)).status == 201);

  fill_disk(srv.data_dir() + "/filler");
  for (const char* name : {"after", "after2", "after3"}) {
    auto r = srv.api().post("/api/projects", project_body(name, src));
    INFO(r.describe());
    CHECK(r.status == 507);
    CHECK(r.error_code() == "insufficient_storage");
  }
  auto del = srv.api().del("/api/projects/before");
  CHECK(del.status == 507);
  // Nothing half-made, and berth is still up and answers reads.
  CHECK(!fs::exists(srv.projects_dir() + "/after"));
  REQUIRE(srv.running());
  CHECK(srv.api().get("/api/projects/before").status == 200);
  auto h = srv.health();
  CHECK(h.value("disk", "") == "full");
  CHECK(h.value("status", "") == "degraded");

  // It starts on the full disk (every byte taken: what the shutdown freed too) and serves reads.
  REQUIRE(srv.terminate(10s) == 0);
  fill_disk(srv.data_dir() + "/filler2");
  srv.start();
  CHECK(srv.api().get("/api/projects/before").status == 200);
  CHECK(srv.api().get("/api/projects").status == 200);
  CHECK(srv.health().value("disk", "") == "full");
  CHECK(srv.api().post("/api/projects", project_body("after", src)).status == 507);

  // Space comes back: writes resume without a restart.
  fs::remove(srv.data_dir() + "/filler");
  fs::remove(srv.data_dir() + "/filler2");
  auto created = srv.api().post("/api/projects", project_body("after", src));
  INFO(created.describe());
  CHECK(created.status == 201);
  CHECK(srv.health().value("disk", "") == "ok");
  REQUIRE(srv.running());
  REQUIRE(srv.terminate(10s) == 0);
  auto verify = run({"audit", "verify", "--data", srv.data_dir()});
  INFO(verify.describe());
  CHECK(verify.exit_code == 0);
}

namespace {

// Whether any process's command line holds both `a` and `b`.
bool process_with(const std::string& a, const std::string& b) {
  for (auto& entry : fs::directory_iterator("/proc")) {
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmd.find(a) != std::string::npos && cmd.find(b) != std::string::npos) return true;
  }
  return false;
}

std::string last_line_of(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line)) last = line;
  return last;
}

}  // namespace

TEST_CASE("containment - an app printing a lot keeps its log under max bytes x files and keeps running",
          "[integration][containment]") {
  temp_dir tmp;
  auto opts = deploy_server_options({"--log-max-bytes", "20000", "--log-max-files", "3"});
  server srv(tmp.path(), opts);
  auto src = make_site(tmp, "site", "v1");
  auto m = site_manifest("chatty", src);
  // ~450 KB of output before it serves, then the server's own start line.
  m["preview"]["command"] = {"sh", "-c",
                             "python3 -c 'for i in range(5000): print(\"line\", i, \"x\" * 80)'; exec python3 server.py"};
  REQUIRE(srv.api().post("/api/projects", m).status == 201);
  auto started = srv.api().post("/api/projects/chatty/preview/start", std::string{});
  INFO(started.describe());
  REQUIRE(started.status == 200);
  uint16_t port = started.body.at("port");
  CHECK(fetch(port, "/health").status == 200);

  auto log = srv.projects_dir() + "/chatty/preview/logs/preview.log";
  REQUIRE(eventually([&] { return last_line_of(log).find("release") != std::string::npos; }));
  uint64_t total = 0;
  for (auto* suffix : {"", ".1", ".2"}) {
    auto p = log + suffix;
    REQUIRE(fs::exists(p));
    CHECK(fs::file_size(p) <= 20000);
    total += fs::file_size(p);
  }
  CHECK(!fs::exists(log + ".3"));
  CHECK(total <= 3 * 20000);
  // The newest lines are kept, whole: the last printed before the server's start line.
  std::ifstream in(log + ".1");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ifstream cur(log);
  all += std::string((std::istreambuf_iterator<char>(cur)), std::istreambuf_iterator<char>());
  CHECK(all.find("line 4999 " + std::string(80, 'x') + "\n") != std::string::npos);

  // The writer lives in the app's process group: it outlives a berth restart with the app,
  // and stopping the app ends it.
  CHECK(process_with("log-writer", log));
  srv.kill9();
  CHECK(fetch(port, "/health").status == 200);
  CHECK(process_with("log-writer", log));
  srv.start();
  auto stopped = srv.api().post("/api/projects/chatty/preview/stop", std::string{});
  REQUIRE(stopped.status == 200);
  CHECK(eventually([&] { return !process_with("log-writer", log); }));
}
