// `berth plan` / POST …/deployments {"dry_run": true}: what a deploy would change, through a real
// `berth serve` with the sample site (tests/apps/site) and the real CLI. A changed file, an added
// env key and a changed secret show up, no secret value does, and nothing is written: the event
// count, the project's folders and its processes are the same after every plan, with and
// without --build, a failing build included.
#include <algorithm>
#include <set>

#include <catch2/catch.hpp>

#include "tests/integration/cli_support.hpp"
#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/workspace_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

const std::string kFirstToken = "pl4n-VALUE-one-3a7c";   // API_TOKEN deployed with v1
const std::string kSecondToken = "pl4n-VALUE-two-b91e";  // API_TOKEN after the update

// What a plan must leave as it was.
struct footprint {
  uint64_t events = 0;
  std::set<std::string> production, builds, project;
  std::set<pid_t> pids;
  bool operator==(const footprint& o) const {
    return events == o.events && production == o.production && builds == o.builds && project == o.project &&
           pids == o.pids;
  }
  std::string describe() const {
    std::string s = "events " + std::to_string(events) + "\nproduction:";
    for (auto& e : production) s += " " + e;
    s += "\nbuilds:";
    for (auto& e : builds) s += " " + e;
    s += "\nproject:";
    for (auto& e : project) s += " " + e;
    s += "\npids:";
    for (auto p : pids) s += " " + std::to_string(p);
    return s;
  }
};

footprint footprint_of(server& srv, const std::string& name) {
  footprint f;
  f.events = srv.event_count();
  auto root = srv.projects_dir() + "/" + name;
  f.project = list_dir(root);
  f.production = list_dir(root + "/production");
  f.builds = list_dir(root + "/production/builds");
  for (auto& p : procs_in(srv.dir())) f.pids.insert(p.pid);
  return f;
}

// The project's footprint is still `before`.
void unchanged_since(server& srv, const std::string& name, const footprint& before) {
  auto now = footprint_of(srv, name);
  INFO("before:\n" << before.describe() << "\nnow:\n" << now.describe());
  CHECK(now == before);
}

json plan(client& api, const std::string& name, const json& body) {
  auto r = api.post("/api/projects/" + name + "/deployments", body);
  INFO(r.describe());
  REQUIRE(r.status == 200);
  REQUIRE(r.body.is_object());
  CHECK(r.body.value("dry_run", false));
  for (auto& secret : {kFirstToken, kSecondToken}) CHECK(r.raw.find(secret) == std::string::npos);
  return r.body;
}

const json* change_of(const json& p, const std::string& field) {
  for (auto& c : p["manifest"]["changes"])
    if (c.value("field", "") == field) return &c;
  return nullptr;
}

const json* file_of(const json& p, const std::string& path) {
  for (auto& f : p["build"]["files"])
    if (f.value("path", "") == path) return &f;
  return nullptr;
}

}  // namespace

TEST_CASE("plan: a changed file, an added env key and a changed secret show up, and nothing is written",
          "[integration][plan]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  client api(srv.port(), 120s);
  const std::string name = "planner";
  auto site = make_site(tmp, "site", "1");
  auto m = site_manifest(name, site);
  m["secrets"] = {{"API_TOKEN", kFirstToken}};
  REQUIRE(api.post("/api/projects", m).status == 201);

  // No release yet: a first deploy, everything added; nothing written.
  auto before = footprint_of(srv, name);
  auto first = plan(api, name, {{"dry_run", true}});
  CHECK(first.value("first_deploy", false));
  CHECK(first.value("changed", false));
  CHECK(first["current"].is_null());
  REQUIRE(change_of(first, "production.command"));
  CHECK(change_of(first, "production.command")->value("change", "") == "added");
  CHECK(change_of(first, "secrets.API_TOKEN"));
  auto first_built = plan(api, name, {{"dry_run", true}, {"build", true}});
  INFO(first_built.dump(2));
  CHECK(first_built["build"].value("ok", false));
  CHECK(file_of(first_built, "dist/index.html"));
  unchanged_since(srv, name, before);

  auto r = api.post("/api/projects/" + name + "/deployments", std::string{});
  REQUIRE(r.status == 202);
  auto v1 = wait_done(api, r.body["id"], 60s);
  INFO(brief(v1));
  REQUIRE(v1.value("status", "") == "completed");
  auto current = v1["resources"].value("hash", "");
  REQUIRE(current.size() == 12);

  // Nothing changed since: no change, and the build gives the current release.
  before = footprint_of(srv, name);
  auto same = plan(api, name, {{"dry_run", true}, {"build", true}});
  INFO(same.dump(2));
  CHECK_FALSE(same.value("changed", true));
  CHECK(same["current"] == current);
  CHECK(same["deployed_by"] == v1["id"]);
  CHECK_FALSE(same["source"].value("changed", true));
  CHECK(same["manifest"].value("known", false));
  CHECK(same["manifest"]["changes"].empty());
  CHECK(same["build"]["release_hash"] == current);
  CHECK_FALSE(same["build"].value("changed", true));
  CHECK(same["build"]["files"].empty());
  unchanged_since(srv, name, before);

  // A file, an env key and a secret's value change.
  set_site(site, "VERSION", "22");
  m["env"]["NEW"] = "added-value";
  m["secrets"] = {{"API_TOKEN", kSecondToken}};
  REQUIRE(api.put("/api/projects/" + name, m).status == 200);
  before = footprint_of(srv, name);

  auto changed = plan(api, name, {{"dry_run", true}});
  INFO(changed.dump(2));
  CHECK(changed.value("changed", false));
  CHECK(changed["source"].value("changed", false));
  CHECK(changed["source"]["hash"] != changed["source"]["current"]);
  CHECK(changed["build"].is_null());
  REQUIRE(change_of(changed, "env.NEW"));
  CHECK(change_of(changed, "env.NEW")->value("change", "") == "added");
  CHECK(change_of(changed, "env.NEW")->value("after", "") == "added-value");
  REQUIRE(change_of(changed, "secrets.API_TOKEN"));
  CHECK(change_of(changed, "secrets.API_TOKEN")->value("change", "") == "changed");
  CHECK_FALSE(change_of(changed, "secrets.API_TOKEN")->contains("before"));
  CHECK_FALSE(change_of(changed, "env.SITE_ENV"));
  unchanged_since(srv, name, before);

  auto built = plan(api, name, {{"dry_run", true}, {"build", true}});
  INFO(built.dump(2));
  REQUIRE(built["build"].value("ok", false));
  CHECK(built["build"]["release_hash"] != current);
  CHECK(built["build"].value("changed", false));
  REQUIRE(file_of(built, "dist/index.html"));
  CHECK(file_of(built, "dist/index.html")->value("change", "") == "changed");
  CHECK((*file_of(built, "dist/index.html"))["size_before"] == 10);  // "release 1\n"
  CHECK((*file_of(built, "dist/index.html"))["size_after"] == 11);   // "release 22\n"
  CHECK_FALSE(file_of(built, "dist/server.py"));
  CHECK(built["source"]["hash"] == changed["source"]["hash"]);
  unchanged_since(srv, name, before);

  {  // the CLI prints it as + - ~ lines, or the JSON
    auto env = cli_env(srv);
    auto text = run_cli({"plan", name}, env);
    INFO(text.describe());
    CHECK(text.exit_code == 0);
    CHECK(has(text.out, "~ source.hash  "));
    CHECK(has(text.out, "+ env.NEW  \"added-value\""));
    CHECK(has(text.out, "~ secrets.API_TOKEN  (value changed)"));
    auto with_build = run_cli({"plan", name, "--build"}, env);
    INFO(with_build.describe());
    CHECK(with_build.exit_code == 0);
    CHECK(has(with_build.out, "~ dist/index.html  10 bytes -> 11 bytes"));
    auto as_json = run_cli({"plan", name, "--build", "--json"}, env);
    INFO(as_json.describe());
    CHECK(as_json.exit_code == 0);
    auto lines = json_lines(as_json);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0]["build"]["release_hash"] == built["build"]["release_hash"]);
    for (auto* run : {&text, &with_build, &as_json})
      for (auto& secret : {kFirstToken, kSecondToken}) {
        CHECK(!has(run->out, secret));
        CHECK(!has(run->err, secret));
      }
    unchanged_since(srv, name, before);
  }

  {  // bad input is refused and changes nothing
    auto refused = [&](const json& body, const std::string& project = "planner") {
      auto r = api.post("/api/projects/" + project + "/deployments", body);
      INFO(r.describe());
      CHECK(r.is_json_error());
      return r.status;
    };
    CHECK(refused({{"dry_run", true}}, "no-such-project") == 404);
    CHECK(refused({{"dry_run", "yes"}}) == 400);
    CHECK(refused({{"build", true}}) == 400);
    CHECK(refused({{"dry_run", false}, {"build", true}}) == 400);
    CHECK(refused({{"dry_run", true}, {"build", 1}}) == 400);
    CHECK(refused({{"dry_run", true}, {"verbose", true}}) == 400);
    unchanged_since(srv, name, before);
    auto cli = run_cli({"plan", "no-such-project"}, cli_env(srv));
    CHECK(cli.exit_code != 0);
    CHECK(has(cli.err, "no project named"));
  }
  {  // a failing build is the plan's answer (200), and leaves nothing either
    set_site(site, "MODE", "build-fail");
    auto failed = plan(api, name, {{"dry_run", true}, {"build", true}});
    INFO(failed.dump(2));
    CHECK_FALSE(failed["build"].value("ok", true));
    CHECK(failed["build"]["error"]["code"] == "build_failed");
    bool logged = false;
    for (auto& line : failed["build"]["log"]) logged |= has(line.get<std::string>(), "build failed: MODE=build-fail");
    CHECK(logged);
    unchanged_since(srv, name, before);
  }
}

TEST_CASE("plan: a git source is cloned at its ref into a scratch folder and hashed, then removed",
          "[integration][plan]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  client api(srv.port(), 120s);
  auto site = make_site(tmp, "site", "1");
  auto git = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/git", "-C", site, "-c", "user.name=t", "-c", "user.email=t@example.com"});
    auto r = run_program(args, {});
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
  };
  git({"init", "-q", "-b", "main"});
  git({"add", "-A"});
  git({"commit", "-q", "-m", "v1"});
  const std::string name = "planned-git";
  auto m = site_manifest(name, site);
  m["source"] = {{"git", site}, {"ref", "main"}};
  REQUIRE(api.post("/api/projects", m).status == 201);
  auto r = api.post("/api/projects/" + name + "/deployments", std::string{});
  REQUIRE(r.status == 202);
  auto v1 = wait_done(api, r.body["id"], 60s);
  INFO(brief(v1));
  REQUIRE(v1.value("status", "") == "completed");

  auto before = footprint_of(srv, name);
  auto same = plan(api, name, {{"dry_run", true}});
  INFO(same.dump(2));
  CHECK_FALSE(same.value("changed", true));
  CHECK(same["source"]["hash"] == v1["resources"]["source_hash"]);
  // A change in the working tree is not what a deploy fetches; a commit is.
  set_site(site, "VERSION", "2");
  CHECK_FALSE(plan(api, name, {{"dry_run", true}})["source"].value("changed", true));
  git({"commit", "-q", "-am", "v2"});
  auto changed = plan(api, name, {{"dry_run", true}});
  INFO(changed.dump(2));
  CHECK(changed["source"].value("changed", false));
  CHECK(changed["manifest"]["changes"].empty());
  unchanged_since(srv, name, before);
}

TEST_CASE("plan: a workspace source hash is the one GET source and the deploy give", "[integration][plan]") {
  workspace_env w("planned-ws");
  w.upload_ok(site_archive(w.tmp, {{"index.html", "one\n"}}));
  auto v1 = w.deploy();
  INFO(brief(v1));
  REQUIRE(v1.value("status", "") == "completed");
  auto before = footprint_of(*w.srv, w.name);
  auto same = plan(w.api(), w.name, {{"dry_run", true}});
  INFO(same.dump(2));
  CHECK_FALSE(same.value("changed", true));
  CHECK(same["source"]["hash"] == v1["resources"]["source_hash"]);
  CHECK(same["source"]["hash"] == w.hash());
  unchanged_since(*w.srv, w.name, before);
  w.upload_ok(site_archive(w.tmp, {{"index.html", "two\n"}}));
  before = footprint_of(*w.srv, w.name);  // the upload is an event of its own
  auto built = plan(w.api(), w.name, {{"dry_run", true}, {"build", true}});
  INFO(built.dump(2));
  CHECK(built["source"]["hash"] == w.hash());
  CHECK(built["source"].value("changed", false));
  REQUIRE(file_of(built, "index.html"));
  CHECK(file_of(built, "index.html")->value("change", "") == "changed");
  unchanged_since(*w.srv, w.name, before);
}
