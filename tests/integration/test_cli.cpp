// The `berth` binary's client verbs, run as child processes against a real `berth serve`
// (README "The berth CLI"): what a user sees (output, exit codes) and what the server then holds.
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <set>

#include <fmt/format.h>

#include <catch2/catch.hpp>

#include "tests/integration/cli_support.hpp"
#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/log_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Each line of a --json run's stdout parsed (a line that is not JSON fails the test).
std::vector<json> json_lines(const run_result& r) {
  std::vector<json> out;
  for (auto& line : lines_of(r.out)) {
    auto j = json::parse(line, nullptr, false);
    INFO(line);
    REQUIRE(j.is_object());
    out.push_back(j);
  }
  return out;
}

std::string current_release(server& srv, const std::string& name) {
  auto r = srv.api().get("/api/projects/" + name + "/production");
  REQUIRE(r.status == 200);
  return r.body.value("current", json()).is_string() ? r.body["current"].get<std::string>() : "";
}

}  // namespace

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

TEST_CASE("cli: deploy shows its phases, a failing deploy names its phase, releases and rollback",
          "[integration][cli]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto env = cli_env(srv);
  auto site = make_site(tmp, "site", "1");
  write_file(tmp / "berth.json", site_manifest("cl-dep", site).dump());
  REQUIRE(run_cli({"projects", "create", "-f", tmp / "berth.json"}, env).exit_code == 0);

  auto first = run_cli({"deploy", "cl-dep"}, env);
  INFO(first.describe());
  REQUIRE(first.exit_code == 0);
  for (auto phase : {"building", "packaging", "health_checking", "completed"}) CHECK(has(first.out, phase));
  CHECK(!has(first.out, "built dist/"));  // the build log only with --logs
  auto hash1 = current_release(srv, "cl-dep");
  REQUIRE(hash1.size() == 12);
  CHECK(has(first.out, hash1));

  set_site(site, "VERSION", "2");
  auto second = run_cli({"deploy", "cl-dep", "--logs"}, env);
  INFO(second.describe());
  REQUIRE(second.exit_code == 0);
  CHECK(has(second.out, "built dist/ for release 2"));
  auto hash2 = current_release(srv, "cl-dep");
  CHECK(hash2 != hash1);
  CHECK(fetch(srv.api().get("/api/projects/cl-dep/production").body["port"].get<uint16_t>()).body == "release 2\n");

  set_site(site, "VERSION", "3");
  set_site(site, "MODE", "build-fail");
  auto failed = run_cli({"deploy", "cl-dep"}, env);
  INFO(failed.describe());
  CHECK(failed.exit_code == 1);
  REQUIRE(lines_of(failed.err).size() == 1);
  CHECK(has(failed.err, "failed in phase building"));
  CHECK(current_release(srv, "cl-dep") == hash2);

  auto releases = run_cli({"releases", "cl-dep"}, env);
  INFO(releases.describe());
  CHECK(releases.exit_code == 0);
  bool marked = false;
  for (auto& line : lines_of(releases.out)) {
    if (has(line, hash2)) marked = line[0] == '*';
  }
  CHECK(marked);
  CHECK(has(releases.out, hash1));

  auto back = run_cli({"rollback", "cl-dep"}, env);
  INFO(back.describe());
  CHECK(back.exit_code == 0);
  CHECK(current_release(srv, "cl-dep") == hash1);

  // --json: the accepted deployment, then one event per line, ending with `complete`.
  auto forward = run_cli({"rollback", "cl-dep", hash2, "--json"}, env);
  INFO(forward.describe());
  CHECK(forward.exit_code == 0);
  auto events = json_lines(forward);
  REQUIRE(events.size() >= 3);
  CHECK(events.front().contains("id"));
  CHECK(events.back()["event"] == "complete");
  CHECK(events.back()["data"]["hash"] == hash2);
  CHECK(current_release(srv, "cl-dep") == hash2);
  auto listed = json_lines(run_cli({"releases", "cl-dep", "--json"}, env));
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["current"] == hash2);
  CHECK(listed[0]["releases"].size() == 2);
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

TEST_CASE("cli: an unknown project, a server that is down, a wrong token: one line and an exit code",
          "[integration][cli]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto env = cli_env(srv);

  for (auto args : std::vector<std::vector<std::string>>{{"projects", "show", "cl-nope"}, {"deploy", "cl-nope"},
                                                          {"releases", "cl-nope"}, {"logs", "cl-nope"}}) {
    auto r = run_cli(args, env);
    INFO(r.describe());
    CHECK(r.exit_code == 3);
    CHECK(r.out.empty());
    CHECK(lines_of(r.err).size() == 1);
    CHECK(has(r.err, "cl-nope"));
  }

  auto down = run_cli({"projects", "ls", "--url", "http://127.0.0.1:" + std::to_string(free_port())}, env);
  INFO(down.describe());
  CHECK(down.exit_code == 4);
  CHECK(lines_of(down.err).size() == 1);
  CHECK(has(down.err, "cannot reach berth"));

  auto wrong = run_cli({"projects", "ls"}, {env[0], {"BERTH_TOKEN", "not-the-right-token-0000"}});
  INFO(wrong.describe());
  CHECK(wrong.exit_code == 4);
  CHECK(lines_of(wrong.err).size() == 1);

  // Without a token, the client reads <data>/token of a local server.
  std::string data = tmp / "client-data";
  ::mkdir(data.c_str(), 0700);
  write_file(data + "/token", srv.token() + "\n");
  auto from_file = run_cli({"projects", "ls", "--data", data}, {env[0]});
  INFO(from_file.describe());
  CHECK(from_file.exit_code == 0);

  auto usage = run_cli({"deploy"}, env);
  CHECK(usage.exit_code == 2);
  auto bad_env = run_cli({"logs", "cl-nope", "--env", "staging"}, env);
  CHECK(bad_env.exit_code == 2);
}

namespace {

// Each of `lines` occurs exactly once in `text`.
void each_once(const std::string& text, const std::vector<std::string>& lines) {
  for (auto& line : lines) {
    INFO(line);
    auto first = text.find(line);
    CHECK(first != std::string::npos);
    if (first != std::string::npos) CHECK(text.find(line, first + 1) == std::string::npos);
  }
}

std::vector<std::string> numbered_lines(const std::string& tag, int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(fmt::format("{} {:06d}\n", tag, i));
  return out;
}

std::string iso_now() {
  auto now = std::chrono::system_clock::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06d}Z", buf, us % 1000000);
}

}  // namespace

TEST_CASE("cli: logs prints the log, logs -f follows it across a server restart and stops on SIGINT with exit 0",
          "[integration][cli]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto env = cli_env(srv);
  auto app = make_lines_app(tmp, "lines", "cl1");
  write_file(tmp / "berth.json", lines_manifest("cl-logs", app).dump());
  REQUIRE(run_cli({"projects", "create", "-f", tmp / "berth.json"}, env).exit_code == 0);
  auto deployed = run_cli({"deploy", "cl-logs"}, env);
  INFO(deployed.describe());
  REQUIRE(deployed.exit_code == 0);
  auto port = srv.api().get("/api/projects/cl-logs/production").body.at("port").get<uint16_t>();
  REQUIRE(emit_lines(port, 5) >= 5);

  // The app's lines reach the log through a pipe: wait until `berth logs` shows the last one.
  run_result logs;
  CHECK(eventually([&] {
    logs = run_cli({"logs", "cl-logs"}, env);
    return logs.exit_code == 0 && has(logs.out, "cl1 000004\n");
  }, 20s));
  INFO(logs.describe());
  each_once(logs.out, numbered_lines("cl1", 0, 5));
  auto as_json = json_lines(run_cli({"logs", "cl-logs", "--json", "--tail", "2"}, env));
  REQUIRE(as_json.size() >= 2);
  CHECK(as_json.front()["event"] == "log");
  CHECK(has(as_json.front()["data"]["text"].get<std::string>(), "cl1 000004\n"));
  CHECK(!has(as_json.front()["data"]["text"].get<std::string>(), "cl1 000002\n"));  // only the last 2 lines
  CHECK(as_json.back()["event"] == "end");

  // Follow: the backlog, then new lines as they are written, then across a server restart
  // (the app keeps running and writing): resumed from the last offset, nothing twice.
  process follower;
  auto out = tmp / "follow.out";
  std::vector<std::string> argv{berth_binary, "logs", "cl-logs", "-f"};
  follower.start(argv, env, out);
  CHECK(eventually([&] { return has(read_file(out), "cl1 000004\n"); }, 20s));
  REQUIRE(emit_lines(port, 3) >= 8);
  CHECK(eventually([&] { return has(read_file(out), "cl1 000007\n"); }, 20s));
  srv.kill9();
  REQUIRE(emit_lines(port, 2) >= 10);  // written while berth is down
  srv.start();
  REQUIRE(emit_lines(port, 2) >= 12);
  CHECK(eventually([&] { return has(read_file(out), "cl1 000011\n"); }, 30s));
  REQUIRE(follower.running());
  follower.signal(SIGINT);
  CHECK(follower.wait(10s) == 0);
  auto followed = read_file(out);
  INFO(followed);
  each_once(followed, numbered_lines("cl1", 0, 12));
  CHECK(has(followed, "reconnecting"));  // the stream did break, and was resumed
}

TEST_CASE("cli: state --at shows the project as it was", "[integration][cli]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto env = cli_env(srv);
  auto site = make_site(tmp, "site", "1");
  auto before = iso_now();
  write_file(tmp / "berth.json", site_manifest("cl-state", site).dump());
  REQUIRE(run_cli({"projects", "create", "-f", tmp / "berth.json"}, env).exit_code == 0);
  REQUIRE(run_cli({"deploy", "cl-state"}, env).exit_code == 0);
  auto hash1 = current_release(srv, "cl-state");
  auto between = iso_now();
  set_site(site, "VERSION", "2");
  REQUIRE(run_cli({"deploy", "cl-state"}, env).exit_code == 0);
  auto hash2 = current_release(srv, "cl-state");
  REQUIRE(hash2 != hash1);

  auto then = run_cli({"state", "cl-state", "--at", between, "--json"}, env);
  INFO(then.describe());
  REQUIRE(then.exit_code == 0);
  auto at = json_lines(then);
  REQUIRE(at.size() == 1);
  CHECK(at[0]["production"]["current"] == hash1);
  auto human = run_cli({"state", "cl-state", "--at", iso_now()}, env);
  INFO(human.describe());
  CHECK(human.exit_code == 0);
  CHECK(has(human.out, hash2));

  auto earlier = run_cli({"state", "cl-state", "--at", before}, env);
  CHECK(earlier.exit_code == 3);
  CHECK(lines_of(earlier.err).size() == 1);
  auto malformed = run_cli({"state", "cl-state", "--at", "yesterday"}, env);
  CHECK(malformed.exit_code == 2);
  CHECK(lines_of(malformed.err).size() == 1);
}

TEST_CASE("cli: preview and production start and stop, cancel a running deploy", "[integration][cli]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto env = cli_env(srv);
  auto site = make_site(tmp, "site", "1");
  write_file(tmp / "berth.json", site_manifest("cl-env", site).dump());
  REQUIRE(run_cli({"projects", "create", "-f", tmp / "berth.json"}, env).exit_code == 0);

  auto preview = run_cli({"preview", "start", "cl-env"}, env);
  INFO(preview.describe());
  CHECK(preview.exit_code == 0);
  CHECK(has(preview.out, "preview: running"));
  auto preview_port = srv.api().get("/api/projects/cl-env").body["environments"]["preview"]["port"].get<uint16_t>();
  CHECK(fetch(preview_port).body == "preview 1\n");
  auto stopped = run_cli({"preview", "stop", "cl-env", "--json"}, env);
  CHECK(stopped.exit_code == 0);
  auto stopped_json = json_lines(stopped);
  REQUIRE(stopped_json.size() == 1);
  CHECK(stopped_json[0]["status"] == "stopped");

  REQUIRE(run_cli({"deploy", "cl-env"}, env).exit_code == 0);
  auto port = srv.api().get("/api/projects/cl-env/production").body["port"].get<uint16_t>();
  CHECK(fetch(port).body == "release 1\n");
  auto prod_stop = run_cli({"production", "stop", "cl-env"}, env);
  INFO(prod_stop.describe());
  CHECK(prod_stop.exit_code == 0);
  CHECK(has(prod_stop.out, "production: stopped"));
  CHECK(fetch(port).status == -1);
  auto prod_start = run_cli({"production", "start", "cl-env"}, env);
  INFO(prod_start.describe());
  CHECK(prod_start.exit_code == 0);
  CHECK(eventually([&] { return fetch(port).body == "release 1\n"; }, 10s));

  // A slow build, followed by `berth deploy` in the background, cancelled with `berth cancel`:
  // the deploy ends with exit 1 and says so.
  set_site(site, "VERSION", "2");
  set_site(site, "BUILD_SLEEP", "30");
  process deploy;
  auto out = tmp / "deploy.out";
  deploy.start({berth_binary, "deploy", "cl-env"}, env, out);
  std::string id;
  CHECK(eventually([&] {
    auto text = read_file(out);
    auto at = text.find("deployment ");
    if (at == std::string::npos || text.find("building") == std::string::npos) return false;
    id = text.substr(at + 11, text.find('\n', at) - at - 11);
    return true;
  }, 20s));
  REQUIRE(!id.empty());
  auto cancel = run_cli({"cancel", id}, env);
  INFO(cancel.describe());
  CHECK(cancel.exit_code == 0);
  CHECK(deploy.wait(30s) == 1);
  auto said = read_file(out);
  INFO(said);
  CHECK(has(said, "failed in phase"));
  CHECK(has(said, "cancel"));
  CHECK(fetch(port).body == "release 1\n");

  auto again = run_cli({"cancel", id}, env);  // it has ended: 409
  CHECK(again.exit_code == 1);
  CHECK(lines_of(again.err).size() == 1);
  auto unknown = run_cli({"cancel", "cl-env.99999"}, env);
  CHECK(unknown.exit_code == 3);
}
