// Bearer-token auth of the control endpoint against a real `berth serve`: where the token
// comes from (--token / BERTH_TOKEN, else <data>/token made 0600 at first start), which routes
// need it, what a client without it gets, and the refusal to listen beyond loopback without
// one.
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

unsigned file_mode(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// Something answers HTTP on 127.0.0.1:port.
bool answers(uint16_t port) {
  try {
    raw_connection c(port);
    c.send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    return c.read_response(3s).status > 0;
  } catch (const std::exception&) {
    return false;  // nothing listens
  }
}

void check_unauthorized(const http_result& r) {
  INFO(r.describe());
  CHECK(r.status == 401);
  CHECK(r.is_json_error());
  CHECK(r.error_code() == "unauthorized");
  CHECK(r.header("WWW-Authenticate").rfind("Bearer", 0) == 0);
}

struct route {
  std::string method, path, body;
};

// Every route of the API, with a request that would be valid (for the project "taken").
std::vector<route> every_api_route() {
  return {
      {"GET", "/api/check/some-name", ""},
      {"POST", "/api/projects", R"({"name":"other-app","source":{"path":"/tmp"}})"},
      {"GET", "/api/projects", ""},
      {"GET", "/api/projects/taken", ""},
      {"PUT", "/api/projects/taken", R"({"name":"taken","source":{"path":"/tmp"}})"},
      {"DELETE", "/api/projects/taken", ""},
      {"GET", "/api/projects/taken/events", ""},
      {"POST", "/api/projects/taken/preview/start", ""},
      {"POST", "/api/projects/taken/preview/stop", ""},
      {"POST", "/api/projects/taken/preview/restart", ""},
      {"POST", "/api/projects/taken/deployments", ""},
      {"GET", "/api/projects/taken/production", ""},
      {"GET", "/api/projects/taken/production/history", ""},
      {"POST", "/api/projects/taken/production/rollback", ""},
      {"POST", "/api/projects/taken/production/stop", ""},
      {"POST", "/api/projects/taken/production/start", ""},
      {"GET", "/api/deployments/taken.1", ""},
      {"GET", "/api/deployment/taken.1", ""},
      {"GET", "/api/deployments/taken.1/events", ""},
      {"GET", "/api/status/taken.1", ""},
      {"POST", "/api/deployments/taken.1/cancel", ""},
      {"POST", "/api/deploy", R"({"name":"other-app"})"},
      {"POST", "/api/debug/crash", R"({"actor":"projects"})"},
      {"GET", "/api/no-such-route", ""},
      // The dashboard's own files are open (test_sessions.cpp); nothing else at the root is.
      {"GET", "/no-such-page.js", ""},
      {"POST", "/", ""},
      {"GET", "/api/session", ""},
      {"DELETE", "/api/session", ""},
  };
}

}  // namespace

TEST_CASE("auth - the token file is created 0600 at first start and reused by the next", "[integration][auth]") {
  temp_dir tmp;
  server_options o;
  o.pass_token = false;
  server srv(tmp.path(), o);
  auto path = srv.data_dir() + "/token";
  REQUIRE(fs::is_regular_file(path));
  CHECK(file_mode(path) == 0600);
  auto token = trimmed(read_file(path));
  CHECK(token.size() >= 32);
  CHECK(srv.token() == token);

  // The token in the file opens the API; nothing else does.
  auto ok = srv.api().get("/api/projects");
  INFO(ok.describe());
  CHECK(ok.status == 200);
  check_unauthorized(client(srv.port(), auth::none()).get("/api/projects"));
  check_unauthorized(client(srv.port(), auth::bearer(test_token())).get("/api/projects"));

  // The next start uses the same file and token.
  srv.kill9();
  srv.start();
  CHECK(trimmed(read_file(path)) == token);
  CHECK(file_mode(path) == 0600);
  CHECK(client(srv.port(), auth::bearer(token)).get("/api/projects").status == 200);
  // The token never reaches the log.
  CHECK(srv.log().find(token) == std::string::npos);

  // A second, separate data dir gets a different token.
  temp_dir other;
  server srv2(other.path(), o);
  CHECK(srv2.token() != token);
}

TEST_CASE("auth - --token and BERTH_TOKEN win over the token file", "[integration][auth]") {
  temp_dir tmp;
  fs::create_directories(tmp / "data");
  const std::string file_token = "file-token-0123456789abcdef";
  write_file(tmp / "data/token", file_token + "\n");
  fs::permissions(tmp / "data/token", fs::perms::owner_read | fs::perms::owner_write);
  const std::string flag_token = "flag-token-0123456789abcdef";
  {
    server_options o;
    o.extra_args = {"--token", flag_token};
    server srv(tmp.path(), o);
    CHECK(srv.token() == flag_token);
    CHECK(client(srv.port(), auth::bearer(flag_token)).get("/api/projects").status == 200);
    check_unauthorized(client(srv.port(), auth::bearer(file_token)).get("/api/projects"));
    CHECK(srv.log().find(flag_token) == std::string::npos);
  }
  const std::string env_token = "env-token-0123456789abcdef";
  {
    server_options o;
    o.env = {{"BERTH_TOKEN", env_token}};
    server srv(tmp.path(), o);
    CHECK(client(srv.port(), auth::bearer(env_token)).get("/api/projects").status == 200);
    check_unauthorized(client(srv.port(), auth::bearer(file_token)).get("/api/projects"));
  }
  {
    // Without either, the file's token is the one.
    server_options o;
    o.pass_token = false;
    server srv(tmp.path(), o);
    CHECK(srv.token() == file_token);
    CHECK(client(srv.port(), auth::bearer(file_token)).get("/api/projects").status == 200);
    check_unauthorized(client(srv.port(), auth::bearer(flag_token)).get("/api/projects"));
  }
  // The file was never rewritten.
  CHECK(read_file(tmp / "data/token") == file_token + "\n");
}

TEST_CASE("auth - every api route needs the token and health stays open", "[integration][auth]") {
  temp_dir tmp;
  server srv(tmp.path(), [] {
    server_options o;
    o.extra_args = {"--enable-fault-injection"};
    return o;
  }());
  {
    auto r = srv.api().post("/api/projects", manifest_for("taken", tmp.path()));
    INFO(r.describe());
    REQUIRE(r.status == 201);
  }
  const auto events = srv.event_count();
  const auto folders = list_dir(srv.projects_dir());
  const auto taken = srv.api().get("/api/projects/taken").body;

  client none(srv.port(), auth::none());
  client wrong(srv.port(), auth::bearer(test_token() + "x"));
  client prefix(srv.port(), auth::bearer(test_token().substr(0, test_token().size() - 1)));
  client empty(srv.port(), auth::header("Bearer "));
  client basic(srv.port(), auth::header("Basic " + test_token()));
  client bare(srv.port(), auth::header(test_token()));
  for (auto& rt : every_api_route()) {
    INFO(rt.method << " " << rt.path);
    for (auto* c : {&none, &wrong, &prefix, &empty, &basic, &bare}) check_unauthorized(c->send(rt.method, rt.path, rt.body));
    // Two Authorization headers, one of them right: refused too.
    check_unauthorized(wrong.send(rt.method, rt.path, rt.body, {{"Authorization", "Bearer " + test_token()}}));
  }
  CHECK(none.get("/api/projects").header("WWW-Authenticate").find("invalid_token") == std::string::npos);
  CHECK(wrong.get("/api/projects").header("WWW-Authenticate").find("invalid_token") != std::string::npos);
  // A raw request with a body and no token: 401 before the body matters.
  auto raw = raw_request(srv.port(), "POST /api/projects HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
  INFO(raw.describe());
  CHECK(raw.status == 401);
  CHECK(raw.error_code() == "unauthorized");
  CHECK(raw.header("WWW-Authenticate").rfind("Bearer", 0) == 0);

  // Nothing happened.
  CHECK(srv.event_count() == events);
  CHECK(list_dir(srv.projects_dir()) == folders);
  CHECK(srv.api().get("/api/projects/taken").body == taken);

  // /health needs no token; the scheme name is case-insensitive.
  auto h = none.get("/health");
  INFO(h.describe());
  CHECK(h.status == 200);
  CHECK(client(srv.port(), auth::header("bearer " + test_token())).get("/api/projects").status == 200);
  CHECK(client(srv.port(), auth::header("Bearer   " + test_token() + "  ")).get("/api/projects").status == 200);
  CHECK(srv.log().find(test_token()) == std::string::npos);
}

TEST_CASE("auth - a non-loopback listen address needs a token given by the operator", "[integration][auth]") {
  temp_dir tmp;
  auto port = free_port();
  const std::vector<std::string> base{"serve", "--listen", "0.0.0.0:" + std::to_string(port), "--data",
                                      tmp / "data", "--switch-mode", "direct"};
  {
    // No token anywhere: refused, nothing listens, nothing is created.
    auto r = run(base, {}, 20s);
    INFO(r.describe());
    CHECK_FALSE(r.timed_out);
    CHECK(r.exit_code != 0);
    CHECK(r.exit_code != -1);
    CHECK((r.out + r.err).find("token") != std::string::npos);
    CHECK((r.out + r.err).find("non-loopback") != std::string::npos);
    CHECK_FALSE(fs::exists(tmp / "data"));
    CHECK_FALSE(answers(port));
  }
  {
    // A token file wider than 0600: refused on any address, with what to do, and left as is.
    fs::create_directories(tmp / "loose/data");
    write_file(tmp / "loose/data/token", "loose-token-0123456789abcdef\n");
    fs::permissions(tmp / "loose/data/token", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                                   fs::perms::others_read);
    auto p = free_port();
    auto r = run({"serve", "--listen", "127.0.0.1:" + std::to_string(p), "--data", tmp / "loose/data",
                  "--switch-mode", "direct"},
                 {}, 20s);
    INFO(r.describe());
    CHECK(r.exit_code != 0);
    CHECK(r.exit_code != -1);
    CHECK((r.out + r.err).find("chmod 600") != std::string::npos);
    CHECK((r.out + r.err).find("loose-token") == std::string::npos);
    CHECK(file_mode(tmp / "loose/data/token") == 0644);
    CHECK_FALSE(answers(p));
  }
  {
    // With --token (and --insecure-http: no TLS here) it starts, says it serves plain HTTP off
    // loopback, and the token works on the loopback side of 0.0.0.0.
    server_options o;
    o.pass_listen = false;
    o.extra_args = {"--listen", "0.0.0.0:" + std::to_string(port), "--token", "wide-token-0123456789abcdef",
                    "--insecure-http"};
    server srv(tmp.path(), o, port);
    CHECK(srv.log().find("plain HTTP on a non-loopback address (--insecure-http)") != std::string::npos);
    CHECK(srv.api().get("/api/projects").status == 200);
    check_unauthorized(client(port, auth::none()).get("/api/projects"));
    CHECK_FALSE(fs::exists(tmp / "data/token"));  // never made up on a non-loopback address
  }
  {
    // A token file the operator made (0600) also does.
    write_file(tmp / "data/token", "operator-token-0123456789abcdef\n");
    fs::permissions(tmp / "data/token", fs::perms::owner_read | fs::perms::owner_write);
    server_options o;
    o.pass_listen = false;
    o.pass_token = false;
    o.extra_args = {"--listen", "0.0.0.0:" + std::to_string(port), "--insecure-http"};
    server srv(tmp.path(), o, port);
    CHECK(srv.token() == "operator-token-0123456789abcdef");
    CHECK(srv.api().get("/api/projects").status == 200);
  }
}
