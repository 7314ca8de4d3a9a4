// Table-driven hostile input against a real `berth serve`: every case must get a 4xx with a
// JSON error body and change nothing: no event (so no port lease either: leases are events),
// no project folder, the existing project and its .env as they were, the same processes.
// Then the HTTP limits: oversized and malformed requests, and slow clients.
#include <sys/socket.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "tests/integration/harness.hpp"
#include "tests/integration/recovery_support.hpp"

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
  auth how = auth::server_token();  // the Authorization the request carries
};

const std::set<std::string> kAnyCode{};

std::string with(json j, const std::string& pointer, json value) {
  j[json::json_pointer(pointer)] = std::move(value);
  return j.dump();
}

// Everything a refused request must leave as it was.
struct world {
  uint64_t events = 0;
  std::set<std::string> folders;
  json taken;        // GET /api/projects/taken (ports, preview status and pid, manifest)
  std::string env;   // its .env (the ports it leases)
  std::set<int> pids;  // processes running in the data dir (the preview app)
  bool operator==(const world& o) const {
    return events == o.events && folders == o.folders && taken == o.taken && env == o.env && pids == o.pids;
  }
  std::string describe() const {
    std::string p;
    for (auto pid : pids) p += std::to_string(pid) + " ";
    return fmt::format("events {} folders {} pids [{}] taken {}", events, folders.size(), p, taken.dump());
  }
};

world snapshot(server& srv) {
  world w;
  w.events = srv.event_count();
  w.folders = list_dir(srv.projects_dir());
  w.taken = srv.api().get("/api/projects/taken").body;
  if (w.taken.contains("environments"))  // live memory/CPU figures are measurements, not state
    for (auto& env : w.taken["environments"]) env.erase("usage");
  w.env = read_file(srv.projects_dir() + "/taken/.env");
  for (auto& p : procs_in(srv.data_dir())) w.pids.insert(p.pid);
  return w;
}

// A copy of tests/apps/hello that answers "bad-input".
std::string make_app(const temp_dir& tmp) {
  auto dir = tmp / "app";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(std::string(BERTH_TEST_APPS) + "/hello/server.py", dir + "/server.py");
  write_file(dir + "/message.txt", "bad-input\n");
  return dir;
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') out.push_back(static_cast<char>(c));
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

}  // namespace

TEST_CASE("bad input gets a 4xx JSON error and changes nothing", "[integration]") {
  temp_dir tmp;
  auto src = make_app(tmp);
  server srv(tmp.path());
  auto& c = srv.api();

  // One existing project with a running preview, so cases aimed at it have a real target
  // whose process must survive them.
  json taken_manifest{{"name", "taken"},
                      {"source", {{"path", src}}},
                      {"preview", {{"command", {"python3", "server.py"}},
                                   {"health", {{"path", "/"}, {"interval_ms", 50}, {"timeout_s", 15}}}}}};
  {
    auto r = c.post("/api/projects", taken_manifest);
    INFO(r.describe());
    REQUIRE(r.status == 201);
    auto p = c.post("/api/projects/taken/preview/start", std::string{});
    INFO(p.describe());
    REQUIRE(p.status == 200);
  }
  const json good = manifest_for("fresh-name", src);

  const std::set<std::string> request{"invalid_request"};
  const std::set<std::string> request_or_manifest{"invalid_request", "invalid_manifest"};
  const std::set<std::string> manifest_code{"invalid_manifest"};
  const std::set<std::string> manifest_or_name{"invalid_manifest", "invalid_name"};
  const std::set<std::string> name_code{"invalid_name"};
  const std::set<std::string> name_or_missing{"invalid_name", "not_found"};
  const std::set<std::string> path_codes{"invalid_name", "invalid_request", "not_found", "uri_too_long"};
  const std::set<std::string> too_large{"payload_too_large"};
  const std::set<int> s400{400}, s400_404{400, 404}, s413{413}, s_path{400, 404, 414};

  const std::string ten_mb(10u << 20, 'x');
  const std::string cyrillic_a = "\xD0\xB0";                             // 'а' U+0430
  const std::string fullwidth_name = "\xEF\xBD\x94\xEF\xBD\x81\xEF\xBD\x8B\xEF\xBD\x85\xEF\xBD\x8E";  // ｔａｋｅｎ
  const std::string long_name(10000, 'a');
  const std::string nul_name = std::string("fresh") + '\0' + "name";

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
      {"name is null", "POST", "/api/projects", with(good, "/name", nullptr), s400, manifest_or_name},
      {"command is a string", "POST", "/api/projects", with(good, "/preview/command", "npm run"), s400, manifest_code},
      {"command with a number", "POST", "/api/projects", with(good, "/preview/command", {"python3", 5}), s400, manifest_code},
      {"env is an array", "POST", "/api/projects", with(good, "/env", {"A=1"}), s400, manifest_code},
      {"keep is a string", "POST", "/api/projects", with(good, "/production/keep", "5"), s400, manifest_code},
      {"keep -1", "POST", "/api/projects", with(good, "/production/keep", -1), s400, manifest_code},
      {"keep 0", "POST", "/api/projects", with(good, "/production/keep", 0), s400, manifest_code},
      {"keep 1e300", "POST", "/api/projects", R"({"name":"fresh-name","source":{"path":")" + src + R"("},"production":{"keep":1e300}})", s400, manifest_code},
      {"keep 2.5", "POST", "/api/projects", with(good, "/production/keep", 2.5), s400, manifest_code},
      {"keep 2^64", "POST", "/api/projects", R"({"name":"fresh-name","source":{"path":")" + src + R"("},"production":{"keep":18446744073709551616}})", s400, manifest_code},
      {"timeout_s 99999999999", "POST", "/api/projects", with(good, "/production/health", {{"timeout_s", 99999999999LL}}), s400, manifest_code},
      {"timeout_s -1", "POST", "/api/projects", with(good, "/preview/health", {{"timeout_s", -1}}), s400, manifest_code},
      {"interval_ms 1e300", "POST", "/api/projects", R"({"name":"fresh-name","source":{"path":")" + src + R"("},"preview":{"command":["x"],"health":{"interval_ms":1e300}}})", s400, manifest_code},
      {"min_healthy_s -5", "POST", "/api/projects", with(good, "/production/health", {{"min_healthy_s", -5}}), s400, manifest_code},
      {"missing name", "POST", "/api/projects", json{{"source", {{"path", src}}}}.dump(), s400, manifest_or_name},
      {"missing source", "POST", "/api/projects", json{{"name", "fresh-name"}}.dump(), s400, manifest_code},
      {"name ../x", "POST", "/api/projects", with(good, "/name", "../x"), s400, name_code},
      {"name ..", "POST", "/api/projects", with(good, "/name", ".."), s400, name_code},
      {"name %2e%2e", "POST", "/api/projects", with(good, "/name", "%2e%2e"), s400, name_code},
      {"name Shop", "POST", "/api/projects", with(good, "/name", "Shop"), s400, name_code},
      {"name ab (too short)", "POST", "/api/projects", with(good, "/name", "ab"), s400, name_code},
      {"name a-- (ends with -)", "POST", "/api/projects", with(good, "/name", "a--"), s400, name_code},
      {"name 64 chars", "POST", "/api/projects", with(good, "/name", "a" + std::string(63, 'b')), s400, name_code},
      {"name 10k chars", "POST", "/api/projects", with(good, "/name", long_name), s400, name_code},
      {"name starts with digit", "POST", "/api/projects", with(good, "/name", "1abc"), s400, name_code},
      {"name with dot", "POST", "/api/projects", with(good, "/name", "a.bc"), s400, name_code},
      {"name with a Cyrillic a", "POST", "/api/projects", with(good, "/name", "t" + cyrillic_a + "ken"), s400, name_code},
      {"name in fullwidth letters", "POST", "/api/projects", with(good, "/name", fullwidth_name), s400, name_code},
      {"name with an escaped NUL", "POST", "/api/projects", with(good, "/name", nul_name), s400, name_code},
      {"name with a raw NUL byte", "POST", "/api/projects",
       std::string(R"({"name":"fresh)") + '\0' + R"(name","source":{"path":")" + src + R"("}})", s400, request},
      {"source.path with an escaped NUL", "POST", "/api/projects", with(good, "/source/path", src + std::string(1, '\0') + "x"), s400, manifest_code},
      {"env value with an escaped NUL", "POST", "/api/projects", with(good, "/env", {{"A", std::string("x\0y", 3)}}), s400, manifest_code},
      {"command with an escaped NUL", "POST", "/api/projects", with(good, "/preview/command", {std::string("py\0", 3)}), s400, manifest_code},
      {"reserved api", "POST", "/api/projects", with(good, "/name", "api"), s400, name_code},
      {"reserved admin", "POST", "/api/projects", with(good, "/name", "admin"), s400, name_code},
      {"reserved www", "POST", "/api/projects", with(good, "/name", "www"), s400, name_code},
      {"source.path relative", "POST", "/api/projects", with(good, "/source/path", "srv/shop"), s400, manifest_code},
      {"source with path and git", "POST", "/api/projects", with(good, "/source/git", "https://example.com/x.git"), s400, manifest_code},
      {"source empty", "POST", "/api/projects", with(good, "/source", json::object()), s400, manifest_code},
      {"2 MB body", "POST", "/api/projects", with(good, "/env/BIG", std::string(2 << 20, 'x')), s413, too_large},
      {"10 MB body", "POST", "/api/projects", ten_mb, s413, too_large},
      {"deeply nested JSON", "POST", "/api/projects", std::string(400000, '[') + std::string(400000, ']'), s400, request_or_manifest},
      {"duplicate name", "POST", "/api/projects", manifest_for("taken", src).dump(), {409}, {"already_exists"}},

      {"GET Shop", "GET", "/api/projects/Shop", "", s400_404, name_or_missing},
      {"GET missing", "GET", "/api/projects/no-such-app", "", {404}, {"not_found"}},
      {"DELETE missing", "DELETE", "/api/projects/no-such-app", "", {404}, {"not_found"}},
      {"PUT mismatched name", "PUT", "/api/projects/taken", manifest_for("other-name", src).dump(), s400, kAnyCode},
      {"PUT unknown field", "PUT", "/api/projects/taken", with(taken_manifest, "/build/foo", 1), s400, manifest_code},
      {"PUT invalid JSON", "PUT", "/api/projects/taken", "{", s400, request},
      {"PUT empty body", "PUT", "/api/projects/taken", "", s400, request_or_manifest},
      {"PUT wrong type", "PUT", "/api/projects/taken", with(taken_manifest, "/preview/command", 7), s400, manifest_code},
      {"PUT keep -1", "PUT", "/api/projects/taken", with(taken_manifest, "/production/keep", -1), s400, manifest_code},
      {"PUT raw NUL", "PUT", "/api/projects/taken", std::string(R"({"name":"taken)") + '\0' + "\"}", s400, request},
      {"PUT 10 MB body", "PUT", "/api/projects/taken", ten_mb, s413, too_large},
      {"PUT missing project", "PUT", "/api/projects/no-such-app", manifest_for("no-such-app", src).dump(), {404}, {"not_found"}},
      {"events with bad from", "GET", "/api/projects/taken/events?from=abc", "", s400, request},
      {"events with negative from", "GET", "/api/projects/taken/events?from=-1", "", s400, request},
      {"events with from 1e300", "GET", "/api/projects/taken/events?from=1e300", "", s400, request},
      {"events with a NUL in from", "GET", "/api/projects/taken/events?from=1%00", "", s400, request},
      {"events with zero limit", "GET", "/api/projects/taken/events?limit=0", "", s400, request},
      {"events with negative limit", "GET", "/api/projects/taken/events?limit=-1", "", s400, request},
      {"events with huge limit", "GET", "/api/projects/taken/events?limit=99999999999999999999", "", s400, request},
      {"events with a malformed until", "GET", "/api/projects/taken/events?until=2026-02-31T00:00:00Z", "", s400, request},
      {"state with a malformed at", "GET", "/api/projects/taken/state?at=yesterday", "", s400, request},
      {"state with a NUL in at", "GET", "/api/projects/taken/state?at=2026-11-23T10:00:00Z%00", "", s400, request},
      {"state of a project that never existed", "GET", "/api/projects/no-such-app/state", "", {404}, {"not_found"}},

      {"deploy with invalid JSON", "POST", "/api/projects/taken/deployments", "{", s400, request},
      {"deploy with a body that is an array", "POST", "/api/projects/taken/deployments", "[]", s400, request},
      {"deploy with an unknown field", "POST", "/api/projects/taken/deployments", R"({"forse":true})", s400, request},
      {"deploy with force as a string", "POST", "/api/projects/taken/deployments", R"({"force":"yes"})", s400, request},
      {"deploy with force as a number", "POST", "/api/projects/taken/deployments", R"({"force":1})", s400, request},
      {"deploy with a raw NUL", "POST", "/api/projects/taken/deployments", std::string("{\"force\":\"") + '\0' + "\"}", s400, request},
      {"deploy with a 10 MB body", "POST", "/api/projects/taken/deployments", ten_mb, s413, too_large},
      {"deploy of a missing project", "POST", "/api/projects/no-such-app/deployments", "", {404}, {"not_found"}},
      {"deploy without production.command", "POST", "/api/projects/taken/deployments", "", {409}, {"conflict"}},
      {"rollback with a bad hash", "POST", "/api/projects/taken/production/rollback", R"({"hash":"../../etc"})", s400, request},
      {"rollback with %2e%2e", "POST", "/api/projects/taken/production/rollback", R"({"hash":"%2e%2e"})", s400, request},
      {"rollback with an uppercase hash", "POST", "/api/projects/taken/production/rollback", R"({"hash":"ABCDEF012345"})", s400, request},
      {"rollback with a hash as a number", "POST", "/api/projects/taken/production/rollback", R"({"hash":5})", s400, request},
      {"rollback with a hash as an array", "POST", "/api/projects/taken/production/rollback", R"({"hash":["0123456789ab"]})", s400, request},
      {"rollback with a NUL in the hash", "POST", "/api/projects/taken/production/rollback", with(json::object(), "/hash", std::string("0123456789a\0", 12)), s400, request},
      {"rollback with fullwidth hex", "POST", "/api/projects/taken/production/rollback", with(json::object(), "/hash", "\xEF\xBC\x90" + std::string("123456789ab")), s400, request},
      {"rollback with an unknown field", "POST", "/api/projects/taken/production/rollback", R"({"hash":null,"to":"x"})", s400, request},
      {"rollback with invalid JSON", "POST", "/api/projects/taken/production/rollback", "{\"hash\"", s400, request},
      {"rollback with a 10 MB body", "POST", "/api/projects/taken/production/rollback", ten_mb, s413, too_large},
      {"rollback with nothing deployed", "POST", "/api/projects/taken/production/rollback", "", {409}, {"conflict"}},
      {"rollback to an unknown hash", "POST", "/api/projects/taken/production/rollback", R"({"hash":"0123456789ab"})", {404, 409}, kAnyCode},
      {"deployment id without a seq", "GET", "/api/deployments/taken", "", s400, request},
      {"deployment id with a bad name", "GET", "/api/deployments/Shop.5", "", s400, request},
      {"deployment id with a huge seq", "GET", "/api/deployments/taken.99999999999999999999999", "", s400, request},
      {"deployment id with a negative seq", "GET", "/api/deployments/taken.-1", "", s400, request},
      {"deployment id with seq 1e3", "GET", "/api/deployments/taken.1e3", "", s400, request},
      {"deployment id with a NUL", "GET", "/api/deployments/taken.1%00", "", s400, request},
      {"deployment that does not exist", "GET", "/api/deployments/taken.999999", "", {404}, {"not_found"}},
      {"events of a deployment that does not exist", "GET", "/api/deployments/taken.999999/events", "", {404}, {"not_found"}},
      {"cancel of a deployment that does not exist", "POST", "/api/deployments/taken.999999/cancel", "", {404}, {"not_found"}},
      {"one-shot deploy without a name", "POST", "/api/deploy", "{}", s400, request},
      {"one-shot deploy with an empty body", "POST", "/api/deploy", "", s400, request},
      {"one-shot deploy with invalid JSON", "POST", "/api/deploy", "{\"name\":", s400, request},
      {"one-shot deploy with a bad name", "POST", "/api/deploy", R"({"name":"Bad!"})", s400, name_code},
      {"one-shot deploy with a name as a number", "POST", "/api/deploy", R"({"name":5})", s400, request},
      {"one-shot deploy with ../", "POST", "/api/deploy", R"({"name":"../etc"})", s400, name_code},
      {"one-shot deploy with a Cyrillic a", "POST", "/api/deploy", with(json::object(), "/name", "okay-n" + cyrillic_a + "me"), s400, name_code},
      {"one-shot deploy with fullwidth letters", "POST", "/api/deploy", with(json::object(), "/name", fullwidth_name), s400, name_code},
      {"one-shot deploy with an escaped NUL", "POST", "/api/deploy", with(json::object(), "/name", nul_name), s400, name_code},
      {"one-shot deploy with a raw NUL", "POST", "/api/deploy", std::string("{\"name\":\"okay") + '\0' + "\"}", s400, request},
      {"one-shot deploy with a 10k name", "POST", "/api/deploy", with(json::object(), "/name", long_name), s400, name_code},
      {"one-shot deploy with a 10 MB body", "POST", "/api/deploy", ten_mb, s413, too_large},
      {"one-shot deploy with an unknown field", "POST", "/api/deploy", R"({"name":"okay-name","x":1})", s400, request},
      {"one-shot deploy without a template", "POST", "/api/deploy", R"({"name":"okay-name"})", {409}, {"conflict"}},
      {"production action that does not exist", "POST", "/api/projects/taken/production/explode", "", {404}, kAnyCode},
      {"PATCH is not a method of the API", "PATCH", "/api/projects/taken", "{}", {404, 405}, kAnyCode},
  };

  // Hostile project names in the path of every route that takes one (percent-encoded as
  // sent). The target "taken" exists, so a name that decoded or truncated to it would act on
  // it (and, for preview/stop, end its process).
  const std::vector<std::pair<std::string, std::string>> hostile_names{
      {"..", ".."},
      {"%2e%2e", "%2e%2e"},
      {"%2E%2E%2Ftaken", "%2E%2E%2Ftaken"},
      {"..%2F..%2Fetc", "..%2F..%2Fetc"},
      {"taken%00", "taken%00"},
      {"%00taken", "%00taken"},
      {"taken%00.x", "taken%00.x"},
      {"Cyrillic a", "t" + url_encode(cyrillic_a) + "ken"},
      {"fullwidth", url_encode(fullwidth_name)},
      {"Taken", "Taken"},
      {"taken + CRLF", "taken%0D%0AX-Injected:%201"},
      {"taken%2F", "taken%2F"},
      {"5k chars", std::string(5000, 'a')},
      {"10k chars", long_name},
  };
  const std::vector<std::tuple<std::string, std::string, std::string>> name_routes{
      {"GET", "/api/projects/{}", ""},
      {"PUT", "/api/projects/{}", taken_manifest.dump()},
      {"DELETE", "/api/projects/{}", ""},
      {"GET", "/api/projects/{}/events", ""},
      {"GET", "/api/projects/{}/state", ""},
      {"POST", "/api/projects/{}/preview/stop", ""},
      {"POST", "/api/projects/{}/preview/restart", ""},
      {"POST", "/api/projects/{}/deployments", ""},
      {"GET", "/api/projects/{}/production", ""},
      {"GET", "/api/projects/{}/production/history", ""},
      {"POST", "/api/projects/{}/production/rollback", ""},
      {"POST", "/api/projects/{}/production/stop", ""},
      {"POST", "/api/projects/{}/production/start", ""},
      {"GET", "/api/deployments/{}.1", ""},
      {"GET", "/api/deployment/{}.1", ""},
      {"GET", "/api/deployments/{}.1/events", ""},
      {"GET", "/api/status/{}.1", ""},
      {"POST", "/api/deployments/{}.1/cancel", ""},
  };
  for (auto& [what, encoded] : hostile_names)
    for (auto& [method, pattern, body] : name_routes)
      cases.push_back({"name " + what + " in " + pattern, method, fmt::format(fmt::runtime(pattern), encoded), body,
                       s_path, path_codes});

  // Every route without the token, and with a wrong one.
  const std::vector<std::tuple<std::string, std::string, std::string>> every_route{
      {"GET", "/api/check/fresh-name", ""},
      {"POST", "/api/projects", good.dump()},
      {"GET", "/api/projects", ""},
      {"GET", "/api/projects/taken", ""},
      {"PUT", "/api/projects/taken", taken_manifest.dump()},
      {"DELETE", "/api/projects/taken", ""},
      {"GET", "/api/projects/taken/events", ""},
      {"GET", "/api/projects/taken/state", ""},
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
      {"POST", "/api/deploy", R"({"name":"fresh-name"})"},
  };
  for (auto& [method, path, body] : every_route) {
    cases.push_back({"no token: " + method + " " + path, method, path, body, {401}, {"unauthorized"}, auth::none()});
    cases.push_back({"wrong token: " + method + " " + path, method, path, body, {401}, {"unauthorized"},
                     auth::bearer(test_token() + "-not")});
  }
  cases.push_back({"no token and a 10 MB body", "POST", "/api/projects", ten_mb, {401}, {"unauthorized"}, auth::none()});

  const auto before = snapshot(srv);
  auto ahead = before;
  for (auto& k : cases) {
    INFO("case: " << k.what << " (" << k.method << " " << k.path.substr(0, 200) << ", body " << k.body.size()
                  << " bytes)");

    // A connection per case: a refused body closes the connection it came on.
    client cl(srv.port(), k.how);
    auto r = cl.send(k.method, k.path, k.body);
    INFO("response: " << r.describe());

    CHECK(k.statuses.count(r.status) == 1);
    CHECK(r.status >= 400);
    CHECK(r.status < 500);
    CHECK(r.is_json_error());
    if (!k.codes.empty()) CHECK(k.codes.count(r.error_code()) == 1);
    if (r.status == 401) CHECK(r.header("WWW-Authenticate").rfind("Bearer", 0) == 0);

    auto after = snapshot(srv);
    INFO("before: " << ahead.describe() << "\nafter: " << after.describe());
    CHECK(after == ahead);
    ahead = std::move(after);
  }

  // /api/check answers hostile names with valid: false (it is a question, not a command).
  for (auto& [what, encoded] : hostile_names) {
    if (encoded.size() > 8000) continue;  // over httplib's request line limit: 414, above
    INFO("check " << what);
    auto r = c.get("/api/check/" + encoded);
    INFO(r.describe());
    if (r.status == 200) {
      CHECK(r.body.value("valid", true) == false);
      CHECK(r.body.value("available", true) == false);
      CHECK(r.body.value("reason", json()).is_string());
    } else {
      CHECK(r.status >= 400);
      CHECK(r.status < 500);
      CHECK(r.is_json_error());
    }
  }

  // The existing project is untouched, its preview still the same process, the log intact.
  auto after = snapshot(srv);
  INFO("before: " << before.describe() << "\nafter: " << after.describe());
  CHECK(after == before);
  CHECK(list_dir(srv.projects_dir()) == std::set<std::string>{"taken"});
  std::set<pid_t> groups;  // one instance, one process group (a sandbox: bwrap, its init, the app)
  for (int pid : before.pids) groups.insert(pgid_of(pid));
  CHECK(groups.size() == 1);
  auto v = run({"audit", "verify", "--data", srv.data_dir()}, {}, 30s);
  INFO(v.describe());
  CHECK(v.exit_code == 0);
}

TEST_CASE("http limits - oversized and malformed requests get JSON errors", "[integration]") {
  temp_dir tmp;
  server srv(tmp.path(), [] {
    server_options o;
    o.extra_args = {"--max-body-bytes", "65536"};
    return o;
  }());
  const auto events = srv.event_count();
  const std::string auth = "Authorization: Bearer " + srv.token() + "\r\n";
  auto request = [&](const std::string& method, const std::string& target, const std::string& headers,
                     const std::string& body = "") {
    return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + headers + "\r\n" + body;
  };
  struct limit_case {
    std::string what, bytes;
    int status;
    std::string code;
  };
  const std::vector<limit_case> cases{
      {"a 9000-byte URL", request("GET", "/api/projects/" + std::string(9000, 'a'), ""), 414, "uri_too_long"},
      {"a 100 KB URL", request("GET", "/api/projects/" + std::string(100000, 'a'), ""), 414, "uri_too_long"},
      {"a 9000-byte header", request("GET", "/api/projects", "X-Big: " + std::string(9000, 'h') + "\r\n"), 431,
       "headers_too_large"},
      {"100 KB of headers", request("GET", "/api/projects", [] {
         std::string h;
         for (int i = 0; i < 200; ++i) h += fmt::format("X-H{}: {}\r\n", i, std::string(500, 'h'));
         return h;
       }()), 431, "headers_too_large"},
      {"a request line without a newline", std::string(100000, 'G'), 414, "uri_too_long"},
      {"an unknown method", "BREW /api/projects HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"},
      {"not HTTP", "hello\r\n\r\n", 400, "bad_request"},
      {"a chunked body", request("POST", "/api/projects", "Transfer-Encoding: chunked\r\n", "2\r\n{}\r\n0\r\n\r\n"), 411,
       "length_required"},
      {"two Content-Length headers", request("POST", "/api/projects", "Content-Length: 2\r\nContent-Length: 3\r\n", "{}"),
       400, "bad_request"},
      {"a Content-Length that is not a number", request("POST", "/api/projects", "Content-Length: 2x\r\n", "{}"), 400,
       "bad_request"},
      {"a negative Content-Length", request("POST", "/api/projects", "Content-Length: -1\r\n", "{}"), 400, "bad_request"},
      {"a body over --max-body-bytes, refused before it is sent", request("POST", "/api/projects", "Content-Length: 70000\r\n"),
       413, "payload_too_large"},
      {"a huge Content-Length", request("POST", "/api/projects", "Content-Length: 99999999999999999\r\n"), 413,
       "payload_too_large"},
      {"Expect: 100-continue over the limit", request("POST", "/api/projects", "Content-Length: 70000\r\nExpect: 100-continue\r\n"),
       413, "payload_too_large"},
      {"Expect: 100-continue without the token",
       "POST /api/projects HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\nExpect: 100-continue\r\n\r\n", 401,
       "unauthorized"},
      // No Content-Length: no body (RFC 9112), answered at once rather than after a read timeout.
      {"a POST without Content-Length", request("POST", "/api/projects", ""), 400, "invalid_request"},
  };
  for (auto& k : cases) {
    INFO("case: " << k.what);
    auto t0 = std::chrono::steady_clock::now();
    auto r = raw_request(srv.port(), k.bytes, 10s);
    INFO(r.describe());
    CHECK(r.status == k.status);
    CHECK(r.is_json_error());
    CHECK(r.error_code() == k.code);
    CHECK(std::chrono::steady_clock::now() - t0 < 4s);  // no read timeout was needed
  }

  // Two requests in one write (pipelining) get two answers, in order.
  raw_connection pipe(srv.port());
  pipe.send(request("GET", "/health", "") + request("GET", "/api/projects", "Connection: close\r\n"));
  CHECK(pipe.wait_closed(5s));
  auto first = parse_response(pipe.received());
  INFO(pipe.received());
  CHECK(first.status == 200);
  auto second_at = pipe.received().find("HTTP/1.1", 10);
  REQUIRE(second_at != std::string::npos);
  auto second = parse_response(pipe.received().substr(second_at));
  CHECK(second.status == 200);
  CHECK(second.body.contains("projects"));

  CHECK(srv.event_count() == events);
  CHECK(srv.health().value("status", "") == "ok");
}

TEST_CASE("http limits - slow clients cannot pin the server threads", "[integration]") {
  temp_dir tmp;
  server srv(tmp.path(), [] {
    server_options o;
    o.extra_args = {"--http-threads", "4"};
    return o;
  }());
  // 8 connections for 4 threads: 4 send half a request line and stall, 4 trickle one byte every
  // 300 ms and never finish (a per-read timeout alone would keep those for ever).
  std::vector<std::unique_ptr<raw_connection>> stalled;
  for (int i = 0; i < 4; ++i) {
    stalled.push_back(std::make_unique<raw_connection>(srv.port()));
    REQUIRE(stalled.back()->send("GET /api/proj"));
  }
  std::atomic<bool> stop{false};
  std::atomic<int> tricklers_cut{0};
  std::vector<std::thread> tricklers;
  for (int i = 0; i < 4; ++i) {
    tricklers.emplace_back([&, port = srv.port()] {
      raw_connection t(port);
      std::string line = "GET /api/projects?" + std::string(10000, 'a');
      for (size_t n = 0; n < line.size() && !stop; ++n) {
        if (!t.send(line.substr(n, 1)) || !t.read_for(300ms)) {
          ++tricklers_cut;
          return;
        }
      }
    });
  }
  std::this_thread::sleep_for(300ms);  // all of them are queued or hold a thread by now

  auto t0 = std::chrono::steady_clock::now();
  auto health = client(srv.port(), auth::none(), 15s).get("/health");
  auto health_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(health.describe() << " after " << health_s << " s");
  CHECK(health.status == 200);
  CHECK(health_s < 12);
  auto t1 = std::chrono::steady_clock::now();
  auto list = client(srv.port(), 15s).get("/api/projects");
  auto list_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  INFO(list.describe() << " after " << list_s << " s");
  CHECK(list.status == 200);
  CHECK(list_s < 12);

  // The server ended every slow connection itself, with a 408 where it had received a
  // partial request.
  for (auto& s : stalled) {
    CHECK(s->wait_closed(12s));
    auto r = parse_response(s->received());
    INFO(s->received());
    CHECK(r.status == 408);
    CHECK(r.error_code() == "request_timeout");
  }
  auto until = std::chrono::steady_clock::now() + 12s;
  while (tricklers_cut < 4 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(50ms);
  CHECK(tricklers_cut == 4);
  stop = true;
  for (auto& t : tricklers) t.join();
  CHECK(srv.running());
}
