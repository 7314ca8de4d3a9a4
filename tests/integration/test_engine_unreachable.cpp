// A container project on a server whose Docker engine cannot be reached: its deploy ends
// (never hangs) as failed with backend_unavailable after bounded retries, the `docker` breaker
// in /health says so, and the process projects of the same server deploy and serve as before.
// No engine is needed: the server is pointed at a socket nobody listens on.
#include <catch2/catch.hpp>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

TEST_CASE("engine down - a docker deploy fails as backend_unavailable, the breaker opens, processes go on",
          "[integration][docker]") {
  temp_dir tmp;
  auto socket = tmp / "no-engine.sock";
  server srv(tmp.path(), deploy_server_options({"--docker-host", "unix://" + socket, "--retry-base-ms", "10",
                                                "--retry-max-ms", "40", "--breaker-open-ms", "60000"}));
  auto& api = srv.api();
  auto site = make_site(tmp, "site", "1");

  auto plain = site_manifest("eng-proc", site);
  REQUIRE(api.post("/api/projects", plain).status == 201);
  auto boxed = site_manifest("eng-box", site);
  boxed["runtime"] = "docker";
  boxed["image"] = {{"base", "berth-test/busybox:1"}};
  auto created = api.post("/api/projects", boxed);
  INFO(created.describe());
  REQUIRE(created.status == 201);

  auto r = api.post("/api/projects/eng-box/deployments", std::string{});
  REQUIRE(r.status == 202);
  auto d = wait_done(api, r.body.at("id").get<std::string>(), 120s);
  {
    INFO(brief(d));
    REQUIRE(d.value("status", "") == "failed");
    CHECK(d["error"].value("code", "") == "backend_unavailable");
    CHECK(d["error"].value("phase", "") == "starting");
    CHECK(d["error"].value("message", "").find("engine") != std::string::npos);
  }
  auto h = api.get("/health");
  REQUIRE(h.status == 200);
  {
    INFO(h.body.dump(2));
    auto& b = h.body.at("breakers").at("docker");
    CHECK(b.at("state") == "open");
    CHECK(b.at("failures").get<int>() >= 5);
    CHECK(h.body.at("breakers").at("process").at("state") == "closed");
    CHECK(h.body.at("status") == "degraded");
  }
  // Nothing of the failed deploy is left: no release serves, no candidate lease.
  auto box = api.get("/api/projects/eng-box");
  REQUIRE(box.status == 200);
  INFO(box.body.dump(2));
  CHECK(box.body.at("environments").at("production").value("current", json()).is_null());

  // The process project neither waits for nor depends on the engine.
  r = api.post("/api/projects/eng-proc/deployments", std::string{});
  REQUIRE(r.status == 202);
  d = wait_done(api, r.body.at("id").get<std::string>(), 60s);
  INFO(brief(d));
  REQUIRE(d.value("status", "") == "completed");
  auto port = api.get("/api/projects/eng-proc").body.at("ports").at("production").get<uint16_t>();
  CHECK(fetch(port).status == 200);
}

TEST_CASE("engine down - a swarm manifest without the proxy is refused and leaves nothing", "[integration][docker]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options({"--docker-host", "unix://" + (tmp / "no-engine.sock"),
                                                "--switch-mode", "direct", "--registry", "127.0.0.1:5000"}));
  auto& api = srv.api();
  auto m = site_manifest("eng-swarm", make_site(tmp, "site", "1"));
  m["runtime"] = "swarm";
  auto r = api.post("/api/projects", m);
  INFO(r.describe());
  CHECK(r.status == 409);
  CHECK(r.error_code() == "runtime_unavailable");
  CHECK(r.body["error"].value("message", "").find("--switch-mode proxy") != std::string::npos);
  CHECK(api.get("/api/projects/eng-swarm").status == 404);
  CHECK(list_dir(srv.projects_dir()).count("eng-swarm") == 0);
}
