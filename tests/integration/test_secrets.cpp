// Secrets through a real `berth serve` with the sample site (tests/apps/site): the apps get
// them as environment variables (the site's GET /env/<NAME> answers with their SHA-256, never
// the value), but the values appear nowhere else: not in any API answer, not in berth's own
// log, not in the deployment or app logs, not in any byte of the data dir (the RocksDB event
// log included) except the project's 0600 `.secrets`, and not in `berth audit replay`.
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <vector>

#include <catch2/catch.hpp>

#include "runtime/eventlog/event_log.hpp"
#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Distinctive values: nothing else in a data dir could contain them by chance. Letters,
// digits and '-' only, so JSON escaping cannot hide them either.
const std::string kFirstToken = "s3cr3t-VALUE-7f1e";      // API_TOKEN at creation
const std::string kToken = "n3w-s3cr3t-VALUE-9c2d";       // API_TOKEN after the update
const std::string kDbPassword = "db-pa55-VALUE-e04b";     // DB_PASSWORD after the update
const std::vector<std::string> kAll = {kFirstToken, kToken, kDbPassword};

// Every occurrence of a secret in `text`, as "<where>: <which secret>".
void find_secrets(const std::string& where, const std::string& text, std::vector<std::string>* out) {
  for (auto& s : kAll)
    if (text.find(s) != std::string::npos) out->push_back(where + ": contains " + s);
}

// Every regular file under `root` (symlinks are not followed), except `skip`.
std::vector<std::string> files_under(const std::string& root, const std::string& skip) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it->is_symlink(ec)) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && it->path() != fs::path(skip)) out.push_back(it->path().string());
  }
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += "\n  " + x;
  return s;
}

mode_t file_mode(const std::string& path) {
  struct stat st;
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// GET /env/<name> on the app: {"set", "sha256"}.
json app_env(uint16_t port, const std::string& name) {
  auto r = fetch(port, "/env/" + name, 3000ms);
  INFO(r.describe());
  REQUIRE(r.status == 200);
  auto j = json::parse(r.body, nullptr, false);
  REQUIRE(j.is_object());
  return j;
}

}  // namespace

TEST_CASE("secrets - the apps get them but no answer log event file or audit output shows them",
          "[integration][secrets]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto& api = srv.api();
  auto site = make_site(tmp, "vault-src", "1");
  const std::string name = "vault";
  const std::string secrets_file = srv.projects_dir() + "/" + name + "/.secrets";

  // Every answer berth gives in this test, checked at the end.
  std::vector<std::pair<std::string, std::string>> answers;
  auto keep = [&](const std::string& what, const http_result& r) {
    answers.emplace_back(what, r.raw);
    return r;
  };

  auto m = site_manifest(name, site);
  m["secrets"] = {{"API_TOKEN", kFirstToken}};
  auto created = keep("POST /api/projects", api.post("/api/projects", m));
  INFO(created.describe());
  REQUIRE(created.status == 201);
  CHECK(created.body["manifest"]["secrets"] == json{{"API_TOKEN", "********"}});
  CHECK(read_file(secrets_file).find(kFirstToken) != std::string::npos);
  CHECK(file_mode(secrets_file) == 0600);

  // A refused update that carries a secret: the error names the field, not the value.
  auto bad = m;
  bad["secrets"] = {{"bad-key", kToken}};
  auto refused = keep("PUT (invalid)", api.put("/api/projects/" + name, bad));
  CHECK(refused.status == 400);

  m["secrets"] = {{"API_TOKEN", kToken}, {"DB_PASSWORD", kDbPassword}};
  auto updated = keep("PUT /api/projects/vault", api.put("/api/projects/" + name, m));
  INFO(updated.describe());
  REQUIRE(updated.status == 200);
  CHECK(updated.body["manifest"]["secrets"] == json({{"API_TOKEN", "********"}, {"DB_PASSWORD", "********"}}));
  // The file holds the current values only, still 0600.
  auto stored = read_file(secrets_file);
  CHECK(stored.find(kToken) != std::string::npos);
  CHECK(stored.find(kDbPassword) != std::string::npos);
  CHECK(stored.find(kFirstToken) == std::string::npos);
  CHECK(file_mode(secrets_file) == 0600);

  // The preview gets the current values.
  auto preview = keep("POST preview/start", api.post("/api/projects/" + name + "/preview/start", std::string{}));
  INFO(preview.describe());
  REQUIRE(preview.status == 200);
  REQUIRE(preview.body.value("status", "") == "running");
  uint16_t preview_port = preview.body.at("port");
  auto pv = app_env(preview_port, "API_TOKEN");
  CHECK(pv["set"] == true);
  CHECK(pv["sha256"] == berth::sha256_hex(kToken));
  CHECK(app_env(preview_port, "DB_PASSWORD")["sha256"] == berth::sha256_hex(kDbPassword));

  // So does production.
  auto queued = keep("POST deployments", api.post("/api/projects/" + name + "/deployments", std::string{}));
  INFO(queued.describe());
  REQUIRE(queued.status == 202);
  std::string id = queued.body.at("id");
  auto done = wait_done(api, id, 60s);
  INFO(brief(done));
  REQUIRE(done.value("status", "") == "completed");
  auto prod = keep("GET production", api.get("/api/projects/" + name + "/production"));
  REQUIRE(prod.status == 200);
  REQUIRE(prod.body.value("status", "") == "running");
  uint16_t prod_port = prod.body.at("port");
  auto pe = app_env(prod_port, "API_TOKEN");
  CHECK(pe["set"] == true);
  CHECK(pe["sha256"] == berth::sha256_hex(kToken));
  CHECK(app_env(prod_port, "DB_PASSWORD")["sha256"] == berth::sha256_hex(kDbPassword));
  CHECK(app_env(prod_port, "SITE_ENV")["sha256"] == berth::sha256_hex("test"));

  // A forced redeploy too (a release started again from the same folder).
  auto again = keep("POST deployments (force)",
                    api.post("/api/projects/" + name + "/deployments", json{{"force", true}}));
  REQUIRE(again.status == 202);
  std::string id2 = again.body.at("id");
  auto done2 = wait_done(api, id2, 60s);
  INFO(brief(done2));
  REQUIRE(done2.value("status", "") == "completed");
  CHECK(app_env(prod_port, "API_TOKEN")["sha256"] == berth::sha256_hex(kToken));

  // Every GET route.
  for (std::string path : {std::string("/health"), "/api/check/" + name, std::string("/api/projects"),
                           "/api/projects/" + name, "/api/projects/" + name + "/events?from=0&limit=10000",
                           "/api/projects/" + name + "/production",
                           "/api/projects/" + name + "/production/history", "/api/deployments/" + id,
                           "/api/deployment/" + id, "/api/deployments/" + id2}) {
    auto r = keep("GET " + path, api.get(path));
    INFO(path << ": " << r.describe());
    CHECK(r.status == 200);
  }
  for (std::string path : {"/api/deployments/" + id + "/events", "/api/status/" + id2}) {
    auto sse = read_sse(srv.port(), path, 10s);
    INFO(path << ": " << sse.describe());
    CHECK(sse.status == 200);
    CHECK(sse.ended);
    std::string all;
    for (auto& e : sse.events) all += e.event + ": " + e.data + "\n";
    CHECK(all.find("complete") != std::string::npos);
    answers.emplace_back("GET " + path + " (SSE)", all);
  }
  keep("POST cancel (ended)", api.post("/api/deployments/" + id + "/cancel", std::string{}));
  keep("POST production/stop", api.post("/api/projects/" + name + "/production/stop", std::string{}));
  keep("POST production/start", api.post("/api/projects/" + name + "/production/start", std::string{}));
  // The project answer shows which secrets exist, masked.
  auto project = api.get("/api/projects/" + name);
  CHECK(project.body["manifest"]["secrets"] == json({{"API_TOKEN", "********"}, {"DB_PASSWORD", "********"}}));

  std::vector<std::string> leaks;
  for (auto& [what, body] : answers) find_secrets(what, body, &leaks);

  // berth's own output (stdout and stderr of `berth serve`).
  auto log = srv.log();
  CHECK(log.size() > 0);
  find_secrets("berth serve output (server.log)", log, &leaks);

  // Every byte of every file in the data dir but .secrets: the RocksDB log (WAL, SST,
  // MANIFEST), .env, deployment and app logs, build workspaces, releases, the preview copy.
  auto files = files_under(srv.data_dir(), secrets_file);
  size_t event_files = 0, deploy_logs = 0;
  for (auto& f : files) {
    if (f.find("/events/") != std::string::npos) ++event_files;
    if (f.find("/deploy-") != std::string::npos) ++deploy_logs;
    find_secrets(f, read_file(f), &leaks);
  }
  CHECK(event_files > 0);
  CHECK(deploy_logs >= 2);

  // `berth audit replay`, in every form.
  for (std::vector<std::string> args : {std::vector<std::string>{"audit", "replay", "--data", srv.data_dir()},
                                        {"audit", "replay", "--data", srv.data_dir(), "--json"},
                                        {"audit", "replay", "--data", srv.data_dir(), "--project", name, "--json"}}) {
    auto r = run(args, {}, 30s);
    INFO(r.describe());
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("API_TOKEN") != std::string::npos);
    std::string shown = "berth";
    for (auto& a : args) shown += " " + a;
    find_secrets(shown, r.out + r.err, &leaks);
  }

  INFO("leaks:" << joined(leaks));
  CHECK(leaks.empty());
  // .secrets is where they are, and only there.
  CHECK(read_file(secrets_file).find(kToken) != std::string::npos);
  CHECK(file_mode(secrets_file) == 0600);
}

// A log written by a berth that stored secret values in its events (or restored from one):
// `audit replay` still never prints them, and says it masked something.
TEST_CASE("secrets - audit replay masks secret values found in an event log", "[integration][secrets]") {
  temp_dir tmp;
  auto data = tmp / "data";
  {
    std::unique_ptr<berth::event_log> log;
    auto s = berth::event_log::open(data + "/events", berth::event_log::mode::read_write, &log);
    INFO(s.message());
    REQUIRE(s);
    json manifest{{"name", "legacy"},
                  {"source", {{"path", "/srv/legacy"}}},
                  {"env", {{"MODE", "plain-env-value"}}},
                  {"secrets", {{"API_TOKEN", kFirstToken}}}};
    json created{{"manifest", manifest}, {"ports", {{"production", 8123}, {"preview", 4123}}}};
    json updated_manifest = manifest;
    updated_manifest["secrets"] = {{"API_TOKEN", kToken}, {"DB_PASSWORD", kDbPassword}};
    std::vector<berth::event_record> out;
    s = log->append({{"project/legacy", "project_created", created.dump()},
                     {"project/legacy", "project_updated", json{{"manifest", updated_manifest}}.dump()}},
                    true, &out);
    INFO(s.message());
    REQUIRE(s);
  }
  auto verify = run({"audit", "verify", "--data", data}, {}, 30s);
  INFO(verify.describe());
  CHECK(verify.exit_code == 0);

  auto text = run({"audit", "replay", "--data", data}, {}, 30s);
  INFO(text.describe());
  REQUIRE(text.exit_code == 0);
  CHECK(text.out.find("project_updated") != std::string::npos);
  CHECK(text.out.find("plain-env-value") != std::string::npos);  // only secrets are masked
  CHECK(text.out.find("secret values masked") != std::string::npos);

  auto js = run({"audit", "replay", "--data", data, "--project", "legacy", "--json"}, {}, 30s);
  INFO(js.describe());
  REQUIRE(js.exit_code == 0);
  auto doc = json::parse(js.out, nullptr, false);
  REQUIRE(doc.is_object());
  REQUIRE(doc["events"].size() == 2);
  for (auto& e : doc["events"]) {
    CHECK(e.value("redacted", false));
    for (auto& [k, v] : e["data"]["manifest"]["secrets"].items()) CHECK(v == "********");
  }
  CHECK(doc["state"]["projects"]["legacy"]["manifest"]["secrets"] ==
        json({{"API_TOKEN", "********"}, {"DB_PASSWORD", "********"}}));

  std::vector<std::string> leaks;
  find_secrets("audit replay", text.out + text.err, &leaks);
  find_secrets("audit replay --json", js.out + js.err, &leaks);
  INFO("leaks:" << joined(leaks));
  CHECK(leaks.empty());
}
