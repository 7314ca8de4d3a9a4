// `berth deploy`, `rollback`, `releases`, `cancel`, `preview` and `production` through the
// real binary against a real server and the sample site (tests/apps/site).
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "tests/integration/cli_support.hpp"
#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

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
  // Every phase, those that ended before the stream opened (preparing takes ms) included.
  for (auto phase : {"preparing", "building", "packaging", "health_checking", "completed"}) CHECK(has(first.out, phase));
  CHECK(!has(first.out, "built dist/"));  // the build log only with --logs
  auto hash1 = current_release(srv, "cl-dep");
  REQUIRE(hash1.size() == 12);
  CHECK(has(first.out, hash1));
  // The same source again: nothing to do, unless forced.
  auto same = run_cli({"deploy", "cl-dep"}, env);
  INFO(same.describe());
  CHECK(same.exit_code == 0);
  CHECK(has(same.out, "deploy unchanged"));
  auto forced = run_cli({"deploy", "cl-dep", "--force"}, env);
  INFO(forced.describe());
  CHECK(forced.exit_code == 0);
  CHECK(has(forced.out, "deploy completed"));

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
  run_result preview_log;  // the preview's log: the site prints its start line
  CHECK(eventually([&] {
    preview_log = run_cli({"logs", "cl-env", "--env", "preview"}, env);
    return preview_log.exit_code == 0 && has(preview_log.out, "port " + std::to_string(preview_port));
  }, 20s));
  INFO(preview_log.describe());
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
