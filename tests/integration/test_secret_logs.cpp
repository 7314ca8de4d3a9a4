// Secrets and the logs berth serves, through a real `berth serve` and the sample site: a build
// that prints its secrets shows `********` in the deployment's detail, in its SSE stream (live
// and late) and in the deploy log file; the build gets only the secrets build.secrets names;
// a multi-line secret (a PEM key) survives a PUT of the masked manifest byte for byte.
#include <filesystem>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "runtime/eventlog/event_log.hpp"
#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kBuildToken = "bld-T0KEN-5a1c9e";    // named in build.secrets
const std::string kRuntimeOnly = "rt-0NLY-VALUE-77d3";  // not named: the build must not see it
const std::string kPem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
    "x9Yq3kZ+it's/'quoted'=and\\back\"slashed\"+Qm9ndXM=\n"
    "-----END PRIVATE KEY-----\n";

// A build that prints its secrets every way a build might: whole, in two writes with a pause
// between them, to stderr, and the PEM key line by line; then builds the site as usual.
const char* kPrintingBuild = R"(import hashlib, os, runpy, sys, time
tok = os.environ.get("BUILD_TOKEN", "")
print("token in one write:", tok, flush=True)
half = len(tok) // 2
sys.stdout.write("token in two writes: " + tok[:half]); sys.stdout.flush(); time.sleep(0.4)
sys.stdout.write(tok[half:] + " done\n"); sys.stdout.flush()
print("to stderr:", tok, file=sys.stderr, flush=True)
pem = os.environ.get("PEM_KEY")
print("pem sha256", hashlib.sha256(pem.encode()).hexdigest() if pem is not None else "unset", flush=True)
sys.stdout.write(pem or ""); sys.stdout.flush()
print("RUNTIME_ONLY is", "set" if "RUNTIME_ONLY" in os.environ else "unset", flush=True)
runpy.run_path("build.py", run_name="__main__")
)";

// Every value that must never be shown: the whole secrets and each line of the PEM key.
std::vector<std::string> forbidden() {
  std::vector<std::string> out{kBuildToken, kRuntimeOnly};
  size_t start = 0;
  for (size_t nl; (nl = kPem.find('\n', start)) != std::string::npos; start = nl + 1)
    out.push_back(kPem.substr(start, nl - start));
  return out;
}

std::vector<std::string> leaks_in(const std::string& where, const std::string& text) {
  std::vector<std::string> out;
  for (auto& s : forbidden())
    if (text.find(s) != std::string::npos) out.push_back(where + ": shows " + s);
  return out;
}

std::string log_of(const json& detail) {
  std::string all;
  for (auto& l : detail.value("log", json::array())) all += l.get<std::string>() + "\n";
  return all;
}

std::string sse_log(const sse_result& r) {
  std::string all;
  for (auto& e : r.events)
    if (e.event == "log" && e.body.is_object()) all += e.body.value("line", "") + "\n";
  return all;
}

json app_env(uint16_t port, const std::string& name) {
  auto r = fetch(port, "/env/" + name, 3000ms);
  INFO(r.describe());
  REQUIRE(r.status == 200);
  return json::parse(r.body, nullptr, false);
}

json printing_manifest(const std::string& name, const std::string& site) {
  auto m = site_manifest(name, site);
  m["build"]["command"] = {"python3", "print_secrets.py"};
  m["build"]["secrets"] = {"BUILD_TOKEN", "PEM_KEY"};
  m["secrets"] = {{"BUILD_TOKEN", kBuildToken}, {"PEM_KEY", kPem}, {"RUNTIME_ONLY", kRuntimeOnly}};
  return m;
}

}  // namespace

TEST_CASE("secrets - a build printing secrets shows ******** in the detail, the SSE stream and the log file",
          "[integration][secrets]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto& api = srv.api();
  auto site = make_site(tmp, "printer-src", "1");
  write_file(site + "/print_secrets.py", kPrintingBuild);
  const std::string name = "printer";
  auto created = api.post("/api/projects", printing_manifest(name, site));
  INFO(created.describe());
  REQUIRE(created.status == 201);
  CHECK(created.body["manifest"]["build"]["secrets"] == json({"BUILD_TOKEN", "PEM_KEY"}));

  auto queued = api.post("/api/projects/" + name + "/deployments", std::string{});
  REQUIRE(queued.status == 202);
  std::string id = queued.body.at("id");
  // Followed live from the start, while the build prints.
  sse_result live;
  std::thread follower([&] { live = read_sse(srv.port(), "/api/deployments/" + id + "/events", 60s); });
  auto done = wait_done(api, id, 60s);
  follower.join();
  INFO(brief(done));
  REQUIRE(done.value("status", "") == "completed");

  auto detail = api.get("/api/deployments/" + id);
  REQUIRE(detail.status == 200);
  auto shown = log_of(detail.body);
  INFO("detail log:\n" << shown);
  CHECK(shown.find("token in one write: ********\n") != std::string::npos);
  CHECK(shown.find("token in two writes: ******** done\n") != std::string::npos);  // split across writes
  CHECK(shown.find("to stderr: ********\n") != std::string::npos);
  CHECK(shown.find("pem sha256 " + berth::sha256_hex(kPem)) != std::string::npos);  // the named ones reach it
  CHECK(shown.find("********\n********\n********\n********\n") != std::string::npos);  // the key, line by line
  CHECK(shown.find("RUNTIME_ONLY is unset") != std::string::npos);  // not named: not given

  INFO("live stream:\n" << sse_log(live));
  CHECK(live.status == 200);
  CHECK(sse_log(live).find("token in two writes: ******** done") != std::string::npos);
  auto late = read_sse(srv.port(), "/api/deployments/" + id + "/events", 10s);
  auto file = read_file(srv.projects_dir() + "/" + name + "/production/logs/deploy-" + id + ".log");
  CHECK(file.find("token in two writes: ******** done\n") != std::string::npos);

  std::vector<std::string> leaks;
  for (auto& l : leaks_in("GET detail", detail.raw)) leaks.push_back(l);
  for (auto& l : leaks_in("live SSE", sse_log(live))) leaks.push_back(l);
  for (auto& l : leaks_in("late SSE", sse_log(late) + [&] {
                            std::string all;
                            for (auto& e : late.events) all += e.data;
                            return all;
                          }()))
    leaks.push_back(l);
  for (auto& l : leaks_in("deploy log file", file)) leaks.push_back(l);
  for (auto& l : leaks_in("berth's own log", srv.log())) leaks.push_back(l);
  std::string joined;
  for (auto& l : leaks) joined += "\n  " + l;
  INFO("leaks:" << joined);
  CHECK(leaks.empty());
  // The build's output went through a pipe, which is gone with the build.
  CHECK(list_dir(srv.projects_dir() + "/" + name + "/production/builds").empty());

  // Production is the app: it gets every secret, the unnamed one included.
  auto prod = api.get("/api/projects/" + name + "/production");
  REQUIRE(prod.body.value("status", "") == "running");
  uint16_t port = prod.body.at("port");
  CHECK(app_env(port, "RUNTIME_ONLY")["sha256"] == berth::sha256_hex(kRuntimeOnly));
  CHECK(app_env(port, "BUILD_TOKEN")["sha256"] == berth::sha256_hex(kBuildToken));
}

TEST_CASE("secrets - a multi-line secret survives a PUT of the masked manifest, byte for byte",
          "[integration][secrets]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto& api = srv.api();
  auto site = make_site(tmp, "pem-src", "1");
  write_file(site + "/print_secrets.py", kPrintingBuild);
  const std::string name = "pemkey";
  REQUIRE(api.post("/api/projects", printing_manifest(name, site)).status == 201);

  // What a client does: GET, edit something else, PUT the answer back, masked secrets and all.
  auto got = api.get("/api/projects/" + name);
  REQUIRE(got.status == 200);
  auto manifest = got.body.at("manifest");
  CHECK(manifest["secrets"]["PEM_KEY"] == "********");
  CHECK(got.raw.find("PRIVATE KEY") == std::string::npos);
  manifest["env"]["SITE_ENV"] = "edited";
  auto put = api.put("/api/projects/" + name, manifest);
  INFO(put.describe());
  REQUIRE(put.status == 200);
  CHECK(put.raw.find("PRIVATE KEY") == std::string::npos);
  auto after = api.get("/api/projects/" + name);
  CHECK(after.body["manifest"]["secrets"] == json({{"BUILD_TOKEN", "********"}, {"PEM_KEY", "********"},
                                                   {"RUNTIME_ONLY", "********"}}));

  // The preview, the build and production all get the exact bytes.
  auto preview = api.post("/api/projects/" + name + "/preview/start", std::string{});
  INFO(preview.describe());
  REQUIRE(preview.status == 200);
  CHECK(app_env(preview.body.at("port").get<uint16_t>(), "PEM_KEY")["sha256"] == berth::sha256_hex(kPem));
  auto queued = api.post("/api/projects/" + name + "/deployments", std::string{});
  REQUIRE(queued.status == 202);
  auto done = wait_done(api, queued.body.at("id"), 60s);
  INFO(brief(done));
  REQUIRE(done.value("status", "") == "completed");
  CHECK(log_of(done).find("pem sha256 " + berth::sha256_hex(kPem)) != std::string::npos);
  auto prod = api.get("/api/projects/" + name + "/production");
  REQUIRE(prod.body.value("status", "") == "running");
  CHECK(app_env(prod.body.at("port").get<uint16_t>(), "PEM_KEY")["sha256"] == berth::sha256_hex(kPem));
  CHECK(app_env(prod.body.at("port").get<uint16_t>(), "SITE_ENV")["sha256"] == berth::sha256_hex("edited"));

  // A berth restart reads the same bytes back.
  srv.restart();
  auto& api2 = srv.api();  // a new connection to the new process
  auto again = api2.post("/api/projects/" + name + "/production/stop", std::string{});
  REQUIRE(again.status == 200);
  REQUIRE(api2.post("/api/projects/" + name + "/production/start", std::string{}).status == 200);
  auto prod2 = api2.get("/api/projects/" + name + "/production");
  REQUIRE(prod2.body.value("status", "") == "running");
  CHECK(app_env(prod2.body.at("port").get<uint16_t>(), "PEM_KEY")["sha256"] == berth::sha256_hex(kPem));
}

TEST_CASE("secrets - build.secrets naming an unknown secret is refused and nothing is written",
          "[integration][secrets]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto& api = srv.api();
  auto site = make_site(tmp, "strict-src", "1");
  auto before = srv.event_count();
  auto m = printing_manifest("strict", site);
  m["build"]["secrets"] = {"BUILD_TOKEN", "NO_SUCH_SECRET"};
  auto r = api.post("/api/projects", m);
  INFO(r.describe());
  CHECK(r.status == 400);
  CHECK(r.error_code() == "invalid_manifest");
  CHECK_THAT(r.body["error"]["message"].get<std::string>(), Catch::Contains("NO_SUCH_SECRET"));
  CHECK(srv.event_count() == before);
  CHECK(list_dir(srv.projects_dir()).empty());
}
