// The `berth` binary's client verbs, run as child processes against a real `berth serve`
// (README "The berth CLI"): projects from JSON and TOML manifests, env and secrets. What a user
// sees (output, exit codes) and what the server then holds.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "tests/integration/cli_support.hpp"
#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

TEST_CASE("cli: projects created from JSON and TOML, listed, shown, checked and removed", "[integration][cli]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto env = cli_env(srv);
  auto site = make_site(tmp, "site", "1");

  write_file(tmp / "berth.json", site_manifest("cl-json", site).dump());
  auto created = run_cli({"projects", "create", "-f", tmp / "berth.json"}, env);
  INFO(created.describe());
  REQUIRE(created.exit_code == 0);
  CHECK(has(created.out, "created cl-json"));

  write_file(tmp / "berth.toml", "name = \"cl-toml\"\n"
                                 "[source]\npath = \"" + site + "\"\n"
                                 "[build]\ncommand = [\"python3\", \"build.py\"]\nartifacts = [\"dist\"]\n"
                                 "[production]\ncommand = [\"python3\", \"dist/server.py\"]\nkeep = 3\n"
                                 "[production.health]\npath = \"/health\"\ntimeout_s = 5\n"
                                 "[env]\nSITE_ENV = \"toml\"\n");
  auto toml = run_cli({"projects", "create", "-f", tmp / "berth.toml"}, env);
  INFO(toml.describe());
  REQUIRE(toml.exit_code == 0);
  auto got = srv.api().get("/api/projects/cl-toml");
  REQUIRE(got.status == 200);
  CHECK(got.body["manifest"]["production"]["command"] == json({"python3", "dist/server.py"}));
  CHECK(got.body["manifest"]["production"]["keep"] == 3);
  CHECK(got.body["manifest"]["env"]["SITE_ENV"] == "toml");

  auto ls = run_cli({"projects", "ls"}, env);
  INFO(ls.describe());
  CHECK(ls.exit_code == 0);
  CHECK(has(ls.out, "cl-json"));
  CHECK(has(ls.out, "cl-toml"));
  auto ls_json = run_cli({"projects", "ls", "--json"}, env);
  auto listed = json_lines(ls_json);
  REQUIRE(listed.size() == 1);
  std::set<std::string> names;
  for (auto& p : listed[0]["projects"]) names.insert(p["name"].get<std::string>());
  CHECK(names == std::set<std::string>{"cl-json", "cl-toml"});

  auto show = run_cli({"projects", "show", "cl-toml"}, env);
  INFO(show.describe());
  CHECK(show.exit_code == 0);
  CHECK(has(show.out, "cl-toml"));
  CHECK(has(show.out, "SITE_ENV"));
  auto shown = json_lines(run_cli({"projects", "show", "cl-toml", "--json"}, env));
  REQUIRE(shown.size() == 1);
  CHECK(shown[0]["name"] == "cl-toml");
  CHECK(shown[0]["environments"]["production"]["status"] == "none");

  auto taken = run_cli({"check", "cl-json"}, env);
  CHECK(taken.exit_code == 1);
  CHECK(has(taken.out, "not available"));
  auto free_name = run_cli({"check", "cl-free", "--json"}, env);
  CHECK(free_name.exit_code == 0);
  auto checked = json_lines(free_name);
  REQUIRE(checked.size() == 1);
  CHECK(checked[0]["available"] == true);

  // Refusals: one line on stderr each, nothing created.
  auto again = run_cli({"projects", "create", "-f", tmp / "berth.json"}, env);
  INFO(again.describe());
  CHECK(again.exit_code == 1);
  CHECK(lines_of(again.err).size() == 1);
  CHECK(has(again.err, "already_exists"));
  write_file(tmp / "bad.toml", "name = \"cl-bad\"\n[source\n");
  auto bad = run_cli({"projects", "create", "-f", tmp / "bad.toml"}, env);
  INFO(bad.describe());
  CHECK(bad.exit_code == 2);
  CHECK(lines_of(bad.err).size() == 1);
  CHECK(has(bad.err, "bad.toml"));
  CHECK(srv.api().get("/api/projects/cl-bad").status == 404);

  auto rm = run_cli({"projects", "rm", "cl-json"}, env);
  INFO(rm.describe());
  CHECK(rm.exit_code == 0);
  CHECK(srv.api().get("/api/projects/cl-json").status == 404);
}

TEST_CASE("cli: env set and unset, secrets set from stdin never shown", "[integration][cli]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto env = cli_env(srv);
  auto site = make_site(tmp, "site", "1");
  auto manifest = site_manifest("cl-cfg", site);
  const std::string kept = "keep-VALUE-1a2b", secret = "s3cr3t-CLI-4d5e";
  manifest["secrets"] = {{"KEEP", kept}};
  write_file(tmp / "berth.json", manifest.dump());
  REQUIRE(run_cli({"projects", "create", "-f", tmp / "berth.json"}, env).exit_code == 0);

  auto set = run_cli({"env", "set", "cl-cfg", "FOO=bar", "URL=http://x/?a=b"}, env);
  INFO(set.describe());
  CHECK(set.exit_code == 0);
  auto m = srv.api().get("/api/projects/cl-cfg").body["manifest"];
  CHECK(m["env"]["FOO"] == "bar");
  CHECK(m["env"]["URL"] == "http://x/?a=b");
  CHECK(m["env"]["SITE_ENV"] == "test");

  auto put = run_cli({"secrets", "set", "cl-cfg", "API_KEY"}, env, secret + "\n");
  INFO(put.describe());
  CHECK(put.exit_code == 0);
  CHECK(!has(put.out + put.err, secret));
  auto stored = read_file(srv.projects_dir() + "/cl-cfg/.secrets");
  CHECK(has(stored, secret));
  CHECK(has(stored, kept));  // the other secret, sent back masked, is kept
  CHECK(!has(stored, secret + "\n"));
  m = srv.api().get("/api/projects/cl-cfg").body["manifest"];
  CHECK(m["secrets"]["API_KEY"] == "********");
  auto as_json = run_cli({"secrets", "set", "cl-cfg", "OTHER", "--json"}, env, "other-VALUE-77");
  CHECK(as_json.exit_code == 0);
  CHECK(!has(as_json.out, "other-VALUE-77"));

  auto empty = run_cli({"secrets", "set", "cl-cfg", "NOTHING"}, env, "");
  CHECK(empty.exit_code == 2);
  CHECK(lines_of(empty.err).size() == 1);
  auto not_pair = run_cli({"env", "set", "cl-cfg", "NOEQUALS"}, env);
  CHECK(not_pair.exit_code == 2);

  CHECK(run_cli({"env", "unset", "cl-cfg", "FOO"}, env).exit_code == 0);
  CHECK(run_cli({"secrets", "unset", "cl-cfg", "KEEP"}, env).exit_code == 0);
  m = srv.api().get("/api/projects/cl-cfg").body["manifest"];
  CHECK(!m["env"].contains("FOO"));
  CHECK(m["env"]["URL"] == "http://x/?a=b");
  stored = read_file(srv.projects_dir() + "/cl-cfg/.secrets");
  CHECK(!has(stored, kept));
  CHECK(has(stored, secret));
}
