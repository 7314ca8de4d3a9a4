// `berth logs` (tail, --json, -f across a server restart, SIGINT) with the lines app
// (tests/apps/lines), and `berth state --at`, through the real binary and a real server.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "tests/integration/cli_support.hpp"
#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/log_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

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
