// Git credentials through a real `berth serve`: a source URL that carries one is refused
// before anything is written; a clone from a real git smart-HTTP server that needs basic auth
// (tests/apps/git_auth_server.py around `git http-backend`) works with source.credentials_secret,
// and the credential is then nowhere berth writes or answers; releases and the preview's copy
// have no `.git`.
#include <cstdlib>
#include <filesystem>
#include <vector>

#include <catch2/catch.hpp>

#include "runtime/eventlog/event_log.hpp"
#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kToken = "ghp-T0KEN-c0ffee-4b1d";
// What would carry it on the wire: base64("x-access-token:" + kToken), as git sends it.
const std::string kHeaderValue = "eC1hY2Nlc3MtdG9rZW46Z2hwLVQwS0VOLWMwZmZlZS00YjFk";

std::vector<std::string> files_under(const std::string& root, const std::string& skip) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it->is_symlink(ec)) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && it->path() != fs::path(skip)) out.push_back(it->path().string());
  }
  return out;
}

void sh(const std::string& cmd) {
  INFO(cmd);
  REQUIRE(std::system(cmd.c_str()) == 0);
}

// A bare repository <root>/site.git holding the sample site at VERSION `version`, on main.
void make_repo(const temp_dir& tmp, const std::string& root, const std::string& version) {
  auto site = make_site(tmp, "git-work", version);
  const std::string git = "git -c user.name=berth -c user.email=berth@localhost";
  sh("git init -q -b main " + site);
  sh(git + " -C " + site + " add -A");
  sh(git + " -C " + site + " commit -q -m site");
  sh("git clone -q --bare " + site + " " + root + "/site.git");
}

bool answers(uint16_t port) {
  auto r = fetch(port, "/", 500ms);
  return r.status > 0;
}

}  // namespace

TEST_CASE("git credentials - a source URL with credentials is refused and nothing is written",
          "[integration][secrets][git]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto& api = srv.api();
  auto before = srv.event_count();
  for (std::string url : {"https://user:" + kToken + "@git.example.com/shop.git", "https://" + kToken + "@git.example.com/shop.git",
                          "ssh://git:" + kToken + "@git.example.com/shop.git"}) {
    json m{{"name", "shop"}, {"source", {{"git", url}}}};
    auto r = api.post("/api/projects", m);
    INFO(url << ": " << r.describe());
    CHECK(r.status == 400);
    CHECK(r.is_json_error());
    CHECK(r.error_code() == "invalid_manifest");
    CHECK_THAT(r.body["error"]["message"].get<std::string>(), Catch::Contains("source.credentials_secret"));
    CHECK(r.raw.find(kToken) == std::string::npos);
  }
  CHECK(srv.event_count() == before);
  CHECK(list_dir(srv.projects_dir()).empty());

  // A PUT that would add one is refused the same way, and the project is as it was.
  auto ok = api.post("/api/projects", manifest_for("shop", tmp.path()));
  REQUIRE(ok.status == 201);
  auto count = srv.event_count();
  json m{{"name", "shop"}, {"source", {{"git", "https://x:" + kToken + "@git.example.com/shop.git"}}}};
  auto put = api.put("/api/projects/shop", m);
  CHECK(put.status == 400);
  CHECK(put.raw.find(kToken) == std::string::npos);
  CHECK(srv.event_count() == count);
  CHECK(api.get("/api/projects/shop").body["manifest"]["source"] == json{{"path", tmp.path()}});

  // ssh with a user and no password carries no secret: allowed.
  auto ssh = api.put("/api/projects/shop", json{{"name", "shop"}, {"source", {{"git", "git@git.example.com:o/shop.git"}}}});
  INFO(ssh.describe());
  CHECK(ssh.status == 200);
  CHECK(srv.log().find(kToken) == std::string::npos);
}

TEST_CASE("git credentials - a clone that needs basic auth works with credentials_secret, stored nowhere",
          "[integration][secrets][git]") {
  temp_dir tmp;
  const std::string root = tmp / "repos";
  make_repo(tmp, root, "7");
  uint16_t git_port = free_port();
  process git_server;
  git_server.start({"/usr/bin/python3", std::string(BERTH_TEST_APPS) + "/git_auth_server.py", std::to_string(git_port), root, kToken},
                   {}, tmp / "git-server.log");
  REQUIRE(eventually([&] { return answers(git_port); }, 10s));
  const std::string url = "http://127.0.0.1:" + std::to_string(git_port) + "/site.git";

  server srv(tmp.path(), deploy_server_options());
  auto& api = srv.api();
  const std::string name = "private";
  auto m = site_manifest(name, "/unused");
  m["source"] = {{"git", url}, {"ref", "main"}};
  m["secrets"] = {{"GIT_TOKEN", kToken}};
  auto created = api.post("/api/projects", m);
  INFO(created.describe());
  REQUIRE(created.status == 201);

  // Without the credential the server says no: the clone fails (and says why).
  auto refused = api.post("/api/projects/" + name + "/deployments", std::string{});
  REQUIRE(refused.status == 202);
  auto failed = wait_done(api, refused.body.at("id"), 60s);
  INFO(brief(failed));
  CHECK(failed.value("status", "") == "failed");
  CHECK(failed["error"].value("code", "") == "source_failed");

  // With it, named by source.credentials_secret.
  m["source"]["credentials_secret"] = "GIT_TOKEN";
  auto put = api.put("/api/projects/" + name, m);
  INFO(put.describe());
  REQUIRE(put.status == 200);
  CHECK(put.body["manifest"]["source"]["credentials_secret"] == "GIT_TOKEN");
  auto queued = api.post("/api/projects/" + name + "/deployments", std::string{});
  REQUIRE(queued.status == 202);
  std::string id = queued.body.at("id");
  auto done = wait_done(api, id, 60s);
  INFO(brief(done));
  REQUIRE(done.value("status", "") == "completed");
  auto prod = api.get("/api/projects/" + name + "/production");
  REQUIRE(prod.body.value("status", "") == "running");
  CHECK(fetch(prod.body.at("port").get<uint16_t>()).body == "release 7\n");
  auto preview = api.post("/api/projects/" + name + "/preview/start", std::string{});
  INFO(preview.describe());
  REQUIRE(preview.status == 200);
  CHECK(fetch(preview.body.at("port").get<uint16_t>()).body == "preview 7\n");
  // The server saw the credential (as the password of x-access-token).
  CHECK(read_file(tmp / "git-server.log").find("user=x-access-token") != std::string::npos);

  // No .git in the release, nor in the preview's copy.
  auto project_dir = srv.projects_dir() + "/" + name;
  auto releases = release_dirs(project_dir + "/production");
  REQUIRE(releases.size() == 1);
  CHECK_FALSE(fs::exists(project_dir + "/production/" + *releases.begin() + "/.git"));
  CHECK(fs::exists(project_dir + "/preview/src/server.py"));
  CHECK_FALSE(fs::exists(project_dir + "/preview/src/.git"));

  // The credential is nowhere but .secrets: no answer, no file (RocksDB included), no log.
  std::vector<std::string> leaks;
  auto check = [&](const std::string& where, const std::string& text) {
    for (auto& s : {kToken, kHeaderValue})
      if (text.find(s) != std::string::npos) leaks.push_back(where);
  };
  for (std::string path : {std::string("/api/projects"), "/api/projects/" + name, "/api/projects/" + name + "/events?from=0&limit=10000",
                           "/api/projects/" + name + "/production", "/api/deployments/" + id,
                           "/api/projects/" + name + "/production/history", std::string("/health")}) {
    auto r = api.get(path);
    CHECK(r.status == 200);
    check("GET " + path, r.raw);
  }
  auto sse = read_sse(srv.port(), "/api/deployments/" + id + "/events", 10s);
  for (auto& e : sse.events) check("SSE", e.data);
  check("berth's own log", srv.log());
  auto secrets_file = project_dir + "/.secrets";
  size_t files = 0;
  for (auto& f : files_under(srv.data_dir(), secrets_file)) {
    ++files;
    check(f, read_file(f));
  }
  CHECK(files > 5);
  auto replay = run({"audit", "replay", "--data", srv.data_dir()}, {}, 30s);
  check("audit replay", replay.out + replay.err);
  std::string joined;
  for (auto& l : leaks) joined += "\n  " + l;
  INFO("the credential shows in:" << joined);
  CHECK(leaks.empty());
  CHECK(read_file(secrets_file).find(kToken) != std::string::npos);
  git_server.kill9();
}

// A log an older berth wrote, with a credential in a project's git URL: `audit replay` never
// prints it, and berth serving that data dir answers the URL masked (the project still loads).
TEST_CASE("git credentials - a URL an older berth stored is masked by audit replay and in answers",
          "[integration][secrets][git]") {
  temp_dir tmp;
  auto data = tmp / "data";
  const std::string url = "https://deploy:" + kToken + "@git.example.com/legacy.git";
  {
    std::unique_ptr<berth::event_log> log;
    auto s = berth::event_log::open(data + "/events", berth::event_log::mode::read_write, &log);
    INFO(s.message());
    REQUIRE(s);
    json manifest{{"name", "legacy"}, {"source", {{"git", url}, {"ref", "main"}}}};
    json created{{"manifest", manifest}, {"ports", {{"production", 8123}, {"preview", 4123}}}};
    std::vector<berth::event_record> out;
    s = log->append({{"project/legacy", "project_created", created.dump()}}, true, &out);
    INFO(s.message());
    REQUIRE(s);
  }
  for (std::vector<std::string> args : {std::vector<std::string>{"audit", "replay", "--data", data},
                                        {"audit", "replay", "--data", data, "--json"}}) {
    auto r = run(args, {}, 30s);
    INFO(r.describe());
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("https://***@git.example.com/legacy.git") != std::string::npos);
    CHECK((r.out + r.err).find(kToken) == std::string::npos);
  }
  server srv(tmp.path());
  auto got = srv.api().get("/api/projects/legacy");
  INFO(got.describe());
  REQUIRE(got.status == 200);
  CHECK(got.body["manifest"]["source"]["git"] == "https://***@git.example.com/legacy.git");
  CHECK(got.raw.find(kToken) == std::string::npos);
}
