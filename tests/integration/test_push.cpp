// `berth push` through the real binary against a real server: a folder (with a .berthignore)
// becomes a workspace project's source, --deploy ships it, and refusals say why.
#include <filesystem>
#include <random>
#include <set>

#include <catch2/catch.hpp>

#include "tests/integration/cli_support.hpp"
#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
namespace fs = std::filesystem;

namespace {

void write_new(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  write_file(path, content);
}

// The sample site as a workspace project (its source is what gets pushed).
void create_workspace_project(server& srv, const std::string& name) {
  auto manifest = site_manifest(name, "");
  manifest["source"] = {{"workspace", json::object()}};
  auto r = srv.api().post("/api/projects", manifest);
  INFO(r.describe());
  REQUIRE(r.status == 201);
}

// The sample site at VERSION `version`, with things a .berthignore and the client leave out.
std::string make_pushed_site(const temp_dir& tmp, const std::string& version) {
  auto site = make_site(tmp, "app", version);
  write_file(site + "/.berthignore", "# not part of the source\n*.log\nnode_modules/\n/scratch\n");
  write_file(site + "/debug.log", "noise\n");
  write_new(site + "/node_modules/left/index.js", "x\n");
  write_file(site + "/scratch", "notes\n");
  write_new(site + "/pages/about.html", "about\n");
  write_new(site + "/pages/scratch", "not anchored at the root: kept\n");
  write_new(site + "/.git/HEAD", "ref: refs/heads/main\n");
  return site;
}

std::set<std::string> source_paths(server& srv, const std::string& name, json* listing = nullptr) {
  auto r = srv.api().get("/api/projects/" + name + "/source");
  INFO(r.describe());
  REQUIRE(r.status == 200);
  std::set<std::string> out;
  for (auto& e : r.body["entries"]) out.insert(e["path"].get<std::string>());
  if (listing) *listing = r.body;
  return out;
}

}  // namespace

TEST_CASE("push: a folder with a .berthignore becomes the workspace project's source", "[integration][push]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto env = cli_env(srv);
  create_workspace_project(srv, "pu-src");
  auto site = make_pushed_site(tmp, "7");

  auto pushed = run_cli({"push", "pu-src", site}, env);
  INFO(pushed.describe());
  REQUIRE(pushed.exit_code == 0);
  json listing;
  auto paths = source_paths(srv, "pu-src", &listing);
  CHECK(paths == std::set<std::string>{".berthignore", "MODE", "VERSION", "build.py", "pages", "pages/about.html",
                                       "pages/scratch", "server.py"});
  auto hash = listing["hash"].get<std::string>();
  REQUIRE(hash.size() >= 12);
  // "pushed <files> files (<size>) to <name>: source <hash first 12>"
  REQUIRE(lines_of(pushed.out).size() == 1);
  CHECK(has(pushed.out, "pushed 7 files ("));
  CHECK(has(pushed.out, ") to pu-src: source " + hash.substr(0, 12)));
  // Not a terminal: one summary line for the upload, no redrawn bar.
  CHECK(has(pushed.err, "uploaded "));
  CHECK(!has(pushed.err, "\r"));

  // A second push replaces the tree: what the new folder no longer has is gone.
  fs::remove_all(site + "/pages");
  auto again = run_cli({"push", "pu-src", site, "--json"}, env);
  INFO(again.describe());
  REQUIRE(again.exit_code == 0);
  auto answer = json_lines(again);
  REQUIRE(answer.size() == 1);  // --json: the server's answer only
  CHECK(answer[0]["source"]["via"] == "upload");
  CHECK(again.err.empty());
  CHECK(source_paths(srv, "pu-src") ==
        std::set<std::string>{".berthignore", "MODE", "VERSION", "build.py", "server.py"});
  CHECK(answer[0]["source"]["hash"] != hash);
}

TEST_CASE("push: --deploy ships the pushed tree to production", "[integration][push]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto env = cli_env(srv);
  create_workspace_project(srv, "pu-dep");
  auto site = make_pushed_site(tmp, "1");

  auto first = run_cli({"push", "pu-dep", site, "--deploy"}, env);
  INFO(first.describe());
  REQUIRE(first.exit_code == 0);
  CHECK(has(first.out, "to pu-dep: source "));
  // Followed as `berth deploy` follows it: the job, its phases, the outcome.
  CHECK(has(first.out, "deploy pu-dep: deployment pu-dep."));
  for (auto phase : {"building", "health_checking"}) CHECK(has(first.out, phase));
  CHECK(has(first.out, "deploy completed: release "));
  auto port = srv.api().get("/api/projects/pu-dep/production").body["port"].get<uint16_t>();
  CHECK(fetch(port).body == "release 1\n");

  set_site(site, "VERSION", "2");
  auto second = run_cli({"push", "pu-dep", site, "--deploy"}, env);
  INFO(second.describe());
  REQUIRE(second.exit_code == 0);
  CHECK(fetch(port).body == "release 2\n");

  // The same tree again: nothing to deploy unless forced, as `berth deploy` says.
  auto same = run_cli({"push", "pu-dep", site, "--deploy"}, env);
  INFO(same.describe());
  CHECK(same.exit_code == 0);
  CHECK(has(same.out, "deploy unchanged"));
  auto forced = run_cli({"push", "pu-dep", site, "--deploy", "--force"}, env);
  INFO(forced.describe());
  CHECK(forced.exit_code == 0);
  CHECK(has(forced.out, "deploy completed"));

  // A failing build: the deploy's exit code and its one line naming the phase.
  set_site(site, "MODE", "build-fail");
  auto failed = run_cli({"push", "pu-dep", site, "--deploy"}, env);
  INFO(failed.describe());
  CHECK(failed.exit_code == 1);
  CHECK(has(failed.err, "failed in phase building"));
  CHECK(fetch(port).body == "release 2\n");
}

TEST_CASE("push: a path project or an unknown one or a body over the limit is refused with the server's message",
          "[integration][push]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options({"--max-upload-bytes", "65536"}));
  auto env = cli_env(srv);
  auto site = make_site(tmp, "app", "1");
  auto r = srv.api().post("/api/projects", site_manifest("pu-path", site));
  REQUIRE(r.status == 201);

  auto to_path = run_cli({"push", "pu-path", site}, env);
  INFO(to_path.describe());
  CHECK(to_path.exit_code == 1);  // 409: the operation was refused
  CHECK(has(to_path.err, "(conflict)"));
  CHECK(has(to_path.err, "elsewhere"));
  CHECK(to_path.out.empty());
  // The path project's own source is untouched.
  CHECK(fs::exists(site + "/build.py"));

  auto unknown = run_cli({"push", "pu-none", site}, env);
  INFO(unknown.describe());
  CHECK(unknown.exit_code == 3);
  CHECK(has(unknown.err, "(not_found)"));

  // Incompressible bytes over --max-upload-bytes: refused before the body is sent.
  create_workspace_project(srv, "pu-big");
  std::mt19937 rng(7);
  std::string noise(256 * 1024, '\0');
  for (auto& c : noise) c = static_cast<char>(rng());
  write_file(site + "/noise.bin", noise);
  auto big = run_cli({"push", "pu-big", site}, env);
  INFO(big.describe());
  CHECK(big.exit_code == 2);
  CHECK(has(big.err, "(payload_too_large)"));

  auto missing_dir = run_cli({"push", "pu-big", tmp / "no-such-folder"}, env);
  INFO(missing_dir.describe());
  CHECK(missing_dir.exit_code != 0);
  CHECK(has(missing_dir.err, "no-such-folder"));
}
