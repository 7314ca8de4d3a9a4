// Private data (issue 13, item 4): berth runs with umask 077, its data dir is 0700, a data dir
// it owns with wider modes is tightened at start, and one owned by another user is refused.
// Real `berth serve`, real RocksDB files, a real preview (tests/apps/hello).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// Paths under `root` (recursively) that group or others may read, write or enter.
std::vector<std::string> open_to_others(const std::string& root) {
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_symlink()) continue;
    if ((mode_of(it->path().string()) & 077) != 0) out.push_back(it->path().string());
  }
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += "\n  " + x;
  return s;
}

}  // namespace

TEST_CASE("private data - a fresh data dir is 0700 and berth's files are its user's alone",
          "[integration][isolation]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  CHECK(mode_of(srv.data_dir()) == 0700);

  // A project with env and secrets, and a running preview that writes its log.
  auto app = tmp / "app";
  fs::create_directories(app);
  fs::copy_file(std::string(BERTH_TEST_APPS) + "/hello/server.py", app + "/server.py");
  write_file(app + "/message.txt", "hi\n");
  json m{{"name", "web"},
         {"source", {{"path", app}}},
         {"env", {{"GREETING", "hello"}}},
         {"secrets", {{"API_KEY", "s3cret-value"}}},
         {"preview", {{"command", {"python3", "server.py"}}, {"health", {{"path", "/"}, {"interval_ms", 50}, {"timeout_s", 15}}}}}};
  auto r = srv.api().post("/api/projects", m);
  INFO(r.describe());
  REQUIRE(r.status == 201);
  r = srv.api().post("/api/projects/web/preview/start", std::string{});
  INFO(r.describe());
  REQUIRE(r.status == 200);

  auto project = srv.projects_dir() + "/web";
  CHECK(mode_of(project + "/.env") == 0600);
  CHECK(mode_of(project + "/.secrets") == 0600);
  // berth's own files: the log (RocksDB), the project's records and logs. (The preview's src is
  // a copy of the app with the app's own modes; the 0700 data dir keeps others out of it.)
  std::vector<std::string> loose;
  for (auto& dir : {srv.data_dir() + "/events", project + "/preview/logs"}) {
    INFO(dir);
    REQUIRE(fs::exists(dir));
    auto more = open_to_others(dir);
    loose.insert(loose.end(), more.begin(), more.end());
  }
  CHECK(!fs::is_empty(project + "/preview/logs"));
  INFO("open to group/others:" << joined(loose));
  CHECK(loose.empty());
  for (auto& entry : fs::directory_iterator(srv.data_dir())) {
    INFO(entry.path());
    CHECK((mode_of(entry.path().string()) & 077) == 0);
  }
  srv.api().post("/api/projects/web/preview/stop", std::string{});
}

TEST_CASE("private data - a data dir made 0755 by an older berth is tightened at start",
          "[integration][isolation]") {
  temp_dir tmp;
  auto data = tmp / "data";
  fs::create_directories(data);
  REQUIRE(::chmod(data.c_str(), 0755) == 0);
  server srv(tmp.path(), deploy_server_options());
  CHECK(mode_of(data) == 0700);
  CHECK(srv.log().find("tightened to 0700") != std::string::npos);
  // It keeps working.
  CHECK(srv.api().post("/api/projects", manifest_for("shop", tmp.path())).status == 201);
}

TEST_CASE("private data - a data dir owned by another user is refused", "[integration][isolation]") {
  if (::geteuid() != 0) {
    WARN("not root: cannot chown the data dir to another uid; skipped");
    return;
  }
  temp_dir tmp;
  auto data = tmp / "data";
  fs::create_directories(data);
  REQUIRE(::chown(data.c_str(), 65534, 65534) == 0);
  auto r = run({"serve", "--listen", "127.0.0.1:" + std::to_string(free_port()), "--data", data,
                "--switch-mode", "direct", "--audit-key", tmp / "keys/audit.key"},
               {}, 20s);
  INFO(r.describe());
  CHECK(r.exit_code == 1);
  CHECK((r.out + r.err).find("belongs to uid 65534") != std::string::npos);
  CHECK(list_dir(data).empty());  // nothing written into it: no token, no log
}
