// The manifest's runtime fields: which driver runs a project, and what containers need.
#include <catch2/catch.hpp>

#include "messages/manifest.hpp"

using namespace berth;
using json = nlohmann::json;

TEST_CASE("a container manifest parses and round-trips", "[manifest]") {
  auto j = json::parse(R"({
    "name": "shop", "source": {"path": "/srv/shop"}, "runtime": "swarm",
    "image": {"base": "berth-test/busybox:1", "port": 8080, "healthcheck": ["wget", "-q", "-O-", "http://127.0.0.1:8080/"],
              "registry": "127.0.0.1:5000", "registry_secret": "REG"},
    "volumes": {"data": "/var/lib/app", "cache_2": "/cache"},
    "production": {"command": ["sh", "-c", "exec httpd -f -p 8080"], "replicas": 3},
    "secrets": {"REG": "user:pass"}})");
  auto r = parse_manifest(j);
  REQUIRE(r.ok);
  CHECK(r.value.runtime == "swarm");
  CHECK(r.value.containers());
  CHECK(r.value.image_base == "berth-test/busybox:1");
  CHECK(r.value.image_port == 8080);
  CHECK(r.value.replicas == 3);
  CHECK(r.value.volumes == std::map<std::string, std::string>{{"cache_2", "/cache"}, {"data", "/var/lib/app"}});
  auto out = to_json(r.value);
  CHECK(out["runtime"] == "swarm");
  CHECK(out.dump().find("user:pass") == std::string::npos);
  auto again = parse_manifest(to_json(r.value, true));
  REQUIRE(again.ok);
  CHECK(again.value.image_healthcheck == r.value.image_healthcheck);
  CHECK(again.value.volumes == r.value.volumes);
  CHECK(again.value.image_registry_secret == "REG");
  CHECK(again.value.replicas == 3);
}

TEST_CASE("a manifest without runtime runs as processes", "[manifest]") {
  auto r = parse_manifest(json::parse(R"({"name":"shop","source":{"path":"/x"}})"));
  REQUIRE(r.ok);
  CHECK(r.value.runtime == "process");
  CHECK_FALSE(r.value.containers());
  CHECK_FALSE(to_json(r.value).contains("runtime"));
  CHECK_FALSE(to_json(r.value).contains("image"));
}

TEST_CASE("bad runtime fields are refused with the field named", "[manifest]") {
  struct bad_case { const char* body; const char* field; };
  const std::string base = R"("name":"shop","source":{"path":"/x"})";
  for (auto& c : std::vector<bad_case>{
           {R"("runtime":"k8s")", "runtime: must be"},
           {R"("runtime":3)", "runtime"},
           {R"("image":{"base":"x"})", "image: applies only to the docker and swarm runtimes"},
           {R"("volumes":{"d":"/d"})", "volumes: applies only"},
           {R"("production":{"replicas":2})", "production.replicas: applies only to the swarm runtime"},
           {R"("runtime":"docker","production":{"replicas":2})", "production.replicas"},
           {R"("runtime":"swarm","production":{"replicas":0})", "production.replicas"},
           {R"("runtime":"docker","image":{"size":1})", "image.size: unknown field"},
           {R"("runtime":"docker","image":{"base":"a b"})", "image.base"},
           {R"("runtime":"docker","image":{"port":70000})", "image.port"},
           {R"("runtime":"docker","image":{"healthcheck":"wget"})", "image.healthcheck"},
           {R"("runtime":"swarm","image":{"registry":"https://r/x"})", "image.registry"},
           {R"("runtime":"swarm","image":{"registry_secret":"S"},"secrets":{"S":"a:b"})", "needs image.registry"},
           {R"("runtime":"swarm","image":{"registry":"r:5000","registry_secret":"S"})", "image.registry_secret"},
           {R"("runtime":"docker","volumes":{"Data":"/d"})", "volumes.Data"},
           {R"("runtime":"docker","volumes":{"d":"relative"})", "volumes.d"},
           {R"("runtime":"docker","volumes":{"d":"/a/../etc"})", "volumes.d"},
           {R"("runtime":"docker","volumes":{"d":"/"})", "volumes.d"},
           {R"("runtime":"docker","volumes":["/d"])", "volumes"},
       }) {
    auto body = "{" + base + "," + c.body + "}";
    INFO(body);
    auto r = parse_manifest(json::parse(body));
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.error, Catch::Contains(c.field));
  }
}
