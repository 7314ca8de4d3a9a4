// Table-driven bad input against a real `berth serve`: every case must get a 4xx with a JSON
// error body, append no event and create no folder.
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

struct bad_case {
  std::string what;
  std::string method;  // GET POST PUT DELETE
  std::string path;
  std::string body;                 // sent as is (POST/PUT)
  std::set<int> statuses;           // acceptable statuses
  std::set<std::string> codes;      // acceptable error codes; empty: any
};

const std::set<std::string> kAnyCode{};

std::string with(json j, const std::string& pointer, json value) {
  j[json::json_pointer(pointer)] = std::move(value);
  return j.dump();
}

}  // namespace

TEST_CASE("bad input gets a 4xx JSON error and changes nothing", "[integration]") {
  temp_dir tmp;
  auto src = tmp.path();
  server srv(tmp.path());
  auto& c = srv.api();

  // One existing project, so PUT/DELETE cases hit a real target.
  {
    auto r = c.post("/api/projects", manifest_for("taken", src));
    INFO(r.describe());
    REQUIRE(r.status == 201);
  }
  const json good = manifest_for("fresh-name", src);

  const std::set<std::string> request{"invalid_request"};
  const std::set<std::string> request_or_manifest{"invalid_request", "invalid_manifest"};
  const std::set<std::string> manifest_code{"invalid_manifest"};
  const std::set<std::string> manifest_or_name{"invalid_manifest", "invalid_name"};
  const std::set<std::string> name_code{"invalid_name"};
  const std::set<std::string> name_or_missing{"invalid_name", "not_found"};
  const std::set<int> s400{400}, s400_404{400, 404}, s413{413};

  std::vector<bad_case> cases{
      {"invalid JSON", "POST", "/api/projects", R"({"name": "abc", )", s400, request},
      {"not JSON at all", "POST", "/api/projects", "name=abc", s400, request},
      {"a JSON array", "POST", "/api/projects", json::array({good}).dump(), s400, request_or_manifest},
      {"a JSON string", "POST", "/api/projects", R"("fresh-name")", s400, request_or_manifest},
      {"empty body", "POST", "/api/projects", "", s400, request_or_manifest},
      {"unknown top-level field", "POST", "/api/projects", with(good, "/colour", "blue"), s400, manifest_code},
      {"unknown nested field build.foo", "POST", "/api/projects",
       with(json::parse(with(good, "/build", {{"command", {"make"}}, {"artifacts", {"dist"}}})), "/build/foo", 1),
       s400, manifest_code},
      {"unknown field in source", "POST", "/api/projects", with(good, "/source/branch", "main"), s400, manifest_code},
      {"name is a number", "POST", "/api/projects", with(good, "/name", 5), s400, manifest_or_name},
      {"command is a string", "POST", "/api/projects", with(good, "/preview/command", "npm run"), s400, manifest_code},
      {"keep is a string", "POST", "/api/projects", with(good, "/production/keep", "5"), s400, manifest_code},
      {"missing name", "POST", "/api/projects", json{{"source", {{"path", src}}}}.dump(), s400, manifest_or_name},
      {"missing source", "POST", "/api/projects", json{{"name", "fresh-name"}}.dump(), s400, manifest_code},
      {"name ../x", "POST", "/api/projects", with(good, "/name", "../x"), s400, name_code},
      {"name Shop", "POST", "/api/projects", with(good, "/name", "Shop"), s400, name_code},
      {"name ab (too short)", "POST", "/api/projects", with(good, "/name", "ab"), s400, name_code},
      {"name a-- (ends with -)", "POST", "/api/projects", with(good, "/name", "a--"), s400, name_code},
      {"name 64 chars", "POST", "/api/projects", with(good, "/name", "a" + std::string(63, 'b')), s400, name_code},
      {"name starts with digit", "POST", "/api/projects", with(good, "/name", "1abc"), s400, name_code},
      {"name with dot", "POST", "/api/projects", with(good, "/name", "a.bc"), s400, name_code},
      {"reserved api", "POST", "/api/projects", with(good, "/name", "api"), s400, name_code},
      {"reserved admin", "POST", "/api/projects", with(good, "/name", "admin"), s400, name_code},
      {"reserved www", "POST", "/api/projects", with(good, "/name", "www"), s400, name_code},
      {"source.path relative", "POST", "/api/projects", with(good, "/source/path", "srv/shop"), s400, manifest_code},
      {"source with path and git", "POST", "/api/projects", with(good, "/source/git", "https://example.com/x.git"), s400, manifest_code},
      {"source empty", "POST", "/api/projects", with(good, "/source", json::object()), s400, manifest_code},
      {"2 MB body", "POST", "/api/projects", with(good, "/env/BIG", std::string(2 << 20, 'x')), s413, {"payload_too_large"}},
      {"duplicate name", "POST", "/api/projects", manifest_for("taken", src).dump(), {409}, {"already_exists"}},

      {"GET ..%2Fx", "GET", "/api/projects/..%2Fx", "", s400_404, name_or_missing},
      {"GET Shop", "GET", "/api/projects/Shop", "", s400_404, name_or_missing},
      {"GET missing", "GET", "/api/projects/no-such-app", "", {404}, {"not_found"}},
      {"DELETE ..%2Fx", "DELETE", "/api/projects/..%2Fx", "", s400_404, name_or_missing},
      {"DELETE ..%2Ftaken", "DELETE", "/api/projects/..%2Ftaken", "", s400_404, name_or_missing},
      {"DELETE Shop", "DELETE", "/api/projects/Shop", "", s400_404, name_or_missing},
      {"DELETE missing", "DELETE", "/api/projects/no-such-app", "", {404}, {"not_found"}},
      {"PUT ..%2Fx", "PUT", "/api/projects/..%2Fx", manifest_for("taken", src).dump(), s400_404, name_or_missing},
      {"PUT Shop", "PUT", "/api/projects/Shop", with(good, "/name", "Shop"), s400_404, name_or_missing},
      {"PUT mismatched name", "PUT", "/api/projects/taken", manifest_for("other-name", src).dump(), s400, kAnyCode},
      {"PUT unknown field", "PUT", "/api/projects/taken", with(manifest_for("taken", src), "/build/foo", 1), s400, manifest_code},
      {"PUT invalid JSON", "PUT", "/api/projects/taken", "{", s400, request},
      {"PUT missing project", "PUT", "/api/projects/no-such-app", manifest_for("no-such-app", src).dump(), {404}, {"not_found"}},
      {"events with bad from", "GET", "/api/projects/taken/events?from=abc", "", s400, request},
      {"events with negative from", "GET", "/api/projects/taken/events?from=-1", "", s400, request},
      {"events with zero limit", "GET", "/api/projects/taken/events?limit=0", "", s400, request},
      {"events with huge limit", "GET", "/api/projects/taken/events?limit=99999999999999999999", "", s400, request},
      {"preview of an invalid name", "POST", "/api/projects/Shop/preview/start", "", s400_404, name_or_missing},

      {"deploy with invalid JSON", "POST", "/api/projects/taken/deployments", "{", s400, request},
      {"deploy with a body that is an array", "POST", "/api/projects/taken/deployments", "[]", s400, request},
      {"deploy with an unknown field", "POST", "/api/projects/taken/deployments", R"({"forse":true})", s400, request},
      {"deploy with force as a string", "POST", "/api/projects/taken/deployments", R"({"force":"yes"})", s400, request},
      {"deploy of an invalid name", "POST", "/api/projects/..%2Fx/deployments", "", s400_404, name_or_missing},
      {"deploy of a missing project", "POST", "/api/projects/no-such-app/deployments", "", {404}, {"not_found"}},
      {"deploy without production.command", "POST", "/api/projects/taken/deployments", "", {409}, {"conflict"}},
      {"rollback with a bad hash", "POST", "/api/projects/taken/production/rollback", R"({"hash":"../../etc"})", s400, request},
      {"rollback with an uppercase hash", "POST", "/api/projects/taken/production/rollback", R"({"hash":"ABCDEF012345"})", s400, request},
      {"rollback with a hash as a number", "POST", "/api/projects/taken/production/rollback", R"({"hash":5})", s400, request},
      {"rollback with nothing deployed", "POST", "/api/projects/taken/production/rollback", "", {409}, {"conflict"}},
      {"rollback to an unknown hash", "POST", "/api/projects/taken/production/rollback", R"({"hash":"0123456789ab"})", {404, 409}, kAnyCode},
      {"deployment id without a seq", "GET", "/api/deployments/taken", "", s400, request},
      {"deployment id with a bad name", "GET", "/api/deployments/Shop.5", "", s400, request},
      {"deployment id with a huge seq", "GET", "/api/deployments/taken.99999999999999999999999", "", s400, request},
      {"deployment that does not exist", "GET", "/api/deployments/taken.999999", "", {404}, {"not_found"}},
      {"events of a deployment that does not exist", "GET", "/api/deployments/taken.999999/events", "", {404}, {"not_found"}},
      {"cancel of a deployment that does not exist", "POST", "/api/deployments/taken.999999/cancel", "", {404}, {"not_found"}},
      {"one-shot deploy without a name", "POST", "/api/deploy", "{}", s400, request},
      {"one-shot deploy with a bad name", "POST", "/api/deploy", R"({"name":"Bad!"})", s400, name_code},
      {"one-shot deploy with an unknown field", "POST", "/api/deploy", R"({"name":"okay-name","x":1})", s400, request},
      {"one-shot deploy without a template", "POST", "/api/deploy", R"({"name":"okay-name"})", {409}, {"conflict"}},
      {"production action that does not exist", "POST", "/api/projects/taken/production/explode", "", {404}, kAnyCode},
  };

  const auto taken_before = c.get("/api/projects/taken").body;
  for (auto& k : cases) {
    INFO("case: " << k.what << " (" << k.method << " " << k.path << ", body " << k.body.size()
                  << " bytes)");
    auto events_before = srv.event_count();
    auto folders_before = list_dir(srv.projects_dir());

    http_result r;
    if (k.method == "GET") r = c.get(k.path);
    else if (k.method == "DELETE") r = c.del(k.path);
    else if (k.method == "POST") r = c.post(k.path, k.body);
    else if (k.method == "PUT") r = c.put(k.path, k.body);
    INFO("response: " << r.describe());

    CHECK(k.statuses.count(r.status) == 1);
    CHECK(r.status >= 400);
    CHECK(r.status < 500);
    CHECK(r.is_json_error());
    if (!k.codes.empty()) CHECK(k.codes.count(r.error_code()) == 1);

    CHECK(srv.event_count() == events_before);
    CHECK(list_dir(srv.projects_dir()) == folders_before);
  }

  // The existing project is untouched, the server still healthy, the log intact.
  auto after = c.get("/api/projects/taken");
  INFO(after.describe());
  REQUIRE(after.status == 200);
  CHECK(after.body == taken_before);
  CHECK(list_dir(srv.projects_dir()) == std::set<std::string>{"taken"});
  auto chk = c.get("/api/check/Shop");
  INFO(chk.describe());
  CHECK(chk.status == 200);
  CHECK(chk.body.value("valid", true) == false);
  CHECK(chk.body.value("reason", json()).is_string());
  auto v = run({"audit", "verify", "--data", srv.data_dir()}, {}, 30s);
  INFO(v.describe());
  CHECK(v.exit_code == 0);
}
