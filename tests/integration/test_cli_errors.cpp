// The CLI's failures: an unknown project, a server that is down, a wrong token, bad usage,
// HTTPS with --cacert: one line on stderr and the documented exit code.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "tests/integration/cli_support.hpp"
#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

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

TEST_CASE("cli: an HTTPS server is reached with --cacert and refused without it", "[integration][cli][tls]") {
  temp_dir tmp;
  const std::string token = "cli-tls-token-0123456789abcdef";
  auto port = free_port();
  auto cert = tmp / "cert.pem", key = tmp / "key.pem";
  auto made = run_program({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                           "ec_paramgen_curve:prime256v1",
                           "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                           "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"}, {});
  REQUIRE(made.exit_code == 0);
  process berth;
  berth.start({berth_binary, "serve", "--listen", "127.0.0.1:" + std::to_string(port), "--data", tmp / "data",
               "--token", token, "--tls-cert", cert, "--tls-key", key, "--switch-mode", "direct"},
              {}, tmp / "server.log");
  env_list env{{"BERTH_URL", "https://127.0.0.1:" + std::to_string(port)}, {"BERTH_TOKEN", token}};
  run_result ls;
  CHECK(eventually([&] {
    ls = run_cli({"projects", "ls", "--cacert", cert}, env);
    return ls.exit_code == 0 || !berth.running();
  }, 20s));
  INFO(ls.describe() << "\n--- server ---\n" << read_file(tmp / "server.log"));
  CHECK(ls.exit_code == 0);
  CHECK(has(ls.out, "no projects"));
  auto untrusted = run_cli({"projects", "ls"}, env);
  INFO(untrusted.describe());
  CHECK(untrusted.exit_code == 4);
  CHECK(lines_of(untrusted.err).size() == 1);
  berth.signal(SIGTERM);
  CHECK(berth.wait(15s) == 0);
}
