// Integration tests against a real `berth serve`: lifecycle and durability across kill -9,
// `berth audit`, port leases, delete, update, config precedence, clean shutdown.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <rocksdb/db.h>

#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

// POST /api/projects; requires 201 and returns the project JSON.
json create_project(client& c, const std::string& name, const std::string& src) {
  auto r = c.post("/api/projects", manifest_for(name, src));
  INFO("create " << name << ": " << r.describe());
  REQUIRE(r.status == 201);
  REQUIRE(r.body.is_object());
  REQUIRE(r.body.value("name", "") == name);
  return r.body;
}

// Every project of the list, its pages followed (GET /api/projects?limit&cursor).
json list_projects(client& c) {
  json all = json::array();
  std::string cursor;
  do {
    auto r = c.get("/api/projects?limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor));
    INFO(r.describe());
    REQUIRE(r.status == 200);
    REQUIRE(r.body.contains("projects"));
    REQUIRE(r.body["projects"].is_array());
    for (auto& p : r.body["projects"]) all.push_back(p);
    cursor = r.body.value("next_cursor", json()).is_string() ? r.body["next_cursor"].get<std::string>() : "";
  } while (!cursor.empty());
  return all;
}

std::map<std::string, json> by_name(const json& projects) {
  std::map<std::string, json> out;
  for (auto& p : projects) out[p.at("name").get<std::string>()] = p;
  return out;
}

json project_events(client& c, const std::string& name) {
  auto r = c.get("/api/projects/" + name + "/events");
  INFO(r.describe());
  REQUIRE(r.status == 200);
  REQUIRE(r.body.contains("events"));
  REQUIRE(r.body["events"].is_array());
  return r.body["events"];
}

// The fields that must survive a restart unchanged.
json durable_view(const json& p) {
  return {{"name", p.at("name")},
          {"manifest", p.at("manifest")},
          {"ports", p.at("ports")},
          {"created", p.at("created")},
          {"updated", p.at("updated")}};
}

uint16_t port_of(const json& p, const char* kind) { return p.at("ports").at(kind).get<uint16_t>(); }

// `.env` must carry the project's two ports.
void check_env_file(const server& s, const json& p) {
  auto name = p.at("name").get<std::string>();
  auto env = read_file(s.projects_dir() + "/" + name + "/.env");
  INFO(name << "/.env:\n" << env);
  CHECK(env.find(fmt::format("PRODUCTION_PORT={}\n", port_of(p, "production"))) != std::string::npos);
  CHECK(env.find(fmt::format("PREVIEW_PORT={}\n", port_of(p, "preview"))) != std::string::npos);
}

run_result audit(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"audit"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, {}, 60s);
}

json replay_json(const std::string& data_dir, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"replay", "--data", data_dir, "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = audit(args);
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  auto j = json::parse(r.out, nullptr, false);
  REQUIRE(j.is_object());
  REQUIRE(j.contains("events"));
  REQUIRE(j.contains("state"));
  REQUIRE(j["state"].contains("projects"));
  REQUIRE(j["state"].contains("ports"));
  return j;
}

// Flips one bit in the middle of the stored value of event `seq`, with RocksDB directly.
void corrupt_event(const std::string& dir, uint64_t seq) {
  rocksdb::DBOptions opts;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs{
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {"events", rocksdb::ColumnFamilyOptions()},
      {"streams", rocksdb::ColumnFamilyOptions()},
      {"meta", rocksdb::ColumnFamilyOptions()}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::Open(opts, dir, cfs, &handles, &db);
  INFO(s.ToString());
  REQUIRE(s.ok());
  char key[8];
  for (int i = 0; i < 8; ++i) key[i] = static_cast<char>((seq >> (56 - 8 * i)) & 0xff);
  std::string value;
  s = db->Get(rocksdb::ReadOptions(), handles[1], rocksdb::Slice(key, 8), &value);
  bool got = s.ok() && value.size() > 2;
  if (got) {
    value[value.size() / 2] ^= 0x01;
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = db->Put(wo, handles[1], rocksdb::Slice(key, 8), value);
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
  INFO(s.ToString());
  REQUIRE(got);
  REQUIRE(s.ok());
}

bool answers(uint16_t port) { return http_get(port, "/health").status == 200; }

// The production port a name starts probing from: 8000 + FNV-1a-64(name) % 2000.
uint16_t natural_production_port(const std::string& name) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char ch : name) {
    h ^= ch;
    h *= 1099511628211ULL;
  }
  return static_cast<uint16_t>(8000 + h % 2000);
}

// True when 127.0.0.1:port can be bound right now (nothing listens there).
bool bindable(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

TEST_CASE("lifecycle - projects and events survive kill -9 and audit verifies and replays them",
          "[integration]") {
  temp_dir tmp;
  server srv(tmp.path());
  const std::vector<std::string> names{"alpha", "bravo-2", "charlie", "delta-app", "echo9"};

  for (auto& n : names) create_project(srv.api(), n, tmp.path());

  auto listed = list_projects(srv.api());
  REQUIRE(listed.size() == names.size());
  std::vector<std::string> listed_names;
  for (auto& p : listed) listed_names.push_back(p.at("name").get<std::string>());
  CHECK(listed_names == names);  // sorted by name

  std::set<uint16_t> ports;
  for (auto& p : listed) {
    auto name = p.at("name").get<std::string>();
    CHECK(p.at("manifest").at("source").at("path") == tmp.path());
    auto root = srv.projects_dir() + "/" + name;
    CHECK(list_dir(root).count(".env") == 1);
    CHECK(list_dir(root).count("preview") == 1);
    CHECK(list_dir(root).count("production") == 1);
    check_env_file(srv, p);
    ports.insert(port_of(p, "production"));
    ports.insert(port_of(p, "preview"));
  }
  CHECK(ports.size() == 2 * names.size());

  // What the server says before the crash.
  auto before = by_name(listed);
  std::map<std::string, json> events_before;
  for (auto& n : names) {
    events_before[n] = project_events(srv.api(), n);
    CHECK(!events_before[n].empty());
    CHECK(events_before[n][0].at("type") == "project_created");
  }
  auto count_before = srv.event_count();
  CHECK(count_before >= names.size());

  srv.kill9();
  srv.start();

  auto after = by_name(list_projects(srv.api()));
  REQUIRE(after.size() == before.size());
  for (auto& n : names) {
    INFO("project " << n);
    REQUIRE(after.count(n) == 1);
    CHECK(durable_view(after[n]) == durable_view(before[n]));
    CHECK(project_events(srv.api(), n) == events_before[n]);
  }
  CHECK(srv.event_count() == count_before);

  {
    auto r = audit({"verify", "--data", srv.data_dir()});
    INFO(r.describe());
    CHECK(r.exit_code == 0);
    CHECK(r.out.find(fmt::format("ok: {} events verified, chain intact", count_before)) !=
          std::string::npos);
  }

  // Replay rebuilds exactly what the API serves.
  {
    auto j = replay_json(srv.data_dir());
    CHECK(j["events"].size() == count_before);
    auto& projects = j["state"]["projects"];
    REQUIRE(projects.size() == names.size());
    for (auto& n : names) {
      INFO("replayed project " << n);
      REQUIRE(projects.contains(n));
      CHECK(durable_view(projects[n]) == durable_view(after[n]));
    }
    auto& port_table = j["state"]["ports"];
    CHECK(port_table.size() == 2 * names.size());
    for (auto& n : names) {
      for (const char* kind : {"production", "preview"}) {
        auto key = std::to_string(port_of(after[n], kind));
        INFO(n << " " << kind << " port " << key);
        REQUIRE(port_table.contains(key));
        CHECK(port_table[key].at("project") == n);
        CHECK(port_table[key].at("kind") == kind);
      }
    }
  }
  {
    auto j = replay_json(srv.data_dir(), {"--project", "charlie"});
    CHECK(j["events"] == events_before["charlie"]);
    for (auto& e : j["events"]) CHECK(e.at("stream") == "project/charlie");
    auto& projects = j["state"]["projects"];
    REQUIRE(projects.size() == 1);
    REQUIRE(projects.contains("charlie"));
    CHECK(durable_view(projects["charlie"]) == durable_view(after["charlie"]));
    auto& port_table = j["state"]["ports"];
    CHECK(port_table.size() == 2);
    for (auto& [port, lease] : port_table.items()) CHECK(lease.at("project") == "charlie");
  }
  {
    // Nothing happened before 2000: empty events and state. Bad --until: exit 2.
    auto j = replay_json(srv.data_dir(), {"--until", "2000-01-01T00:00:00Z"});
    CHECK(j["events"].empty());
    CHECK(j["state"]["projects"].empty());
    CHECK(j["state"]["ports"].empty());
    auto r = audit({"replay", "--data", srv.data_dir(), "--until", "yesterday"});
    INFO(r.describe());
    CHECK(r.exit_code == 2);
    CHECK(!r.err.empty());
  }

  // Clean shutdown, then break the chain on disk: verify must name the event.
  int st = srv.terminate(10s);
  INFO(srv.log());
  REQUIRE(st == 0);

  uint64_t bad = count_before / 2 + 1;
  corrupt_event(srv.data_dir() + "/events", bad);
  auto r = audit({"verify", "--data", srv.data_dir()});
  INFO(r.describe());
  CHECK(r.exit_code == 1);
  CHECK(r.out.find(fmt::format("broken: first bad event seq {}:", bad)) != std::string::npos);

  auto rj = audit({"verify", "--data", srv.data_dir(), "--json"});
  INFO(rj.describe());
  CHECK(rj.exit_code == 1);
  auto vj = json::parse(rj.out, nullptr, false);
  REQUIRE(vj.is_object());
  CHECK(vj.at("ok") == false);
  CHECK(vj.at("first_bad") == bad);
  CHECK(vj.at("checked") == bad - 1);
  CHECK(!vj.at("reason").get<std::string>().empty());
}

TEST_CASE("audit of a missing log exits 2", "[integration]") {
  temp_dir tmp;
  auto r = audit({"verify", "--data", tmp / "nothing-here"});
  INFO(r.describe());
  CHECK(r.exit_code == 2);
  CHECK(!r.err.empty());
  auto r2 = audit({"replay", "--data", tmp / "nothing-here"});
  CHECK(r2.exit_code == 2);
}

TEST_CASE("audit verify and replay work while the server runs and see the latest events",
          "[integration]") {
  temp_dir tmp;
  server srv(tmp.path());
  create_project(srv.api(), "first-one", tmp.path());

  auto check_live = [&](const std::vector<std::string>& expected) {
    auto count = srv.event_count();
    auto v = audit({"verify", "--data", srv.data_dir()});
    INFO(v.describe());
    CHECK(v.exit_code == 0);
    CHECK(v.out.find(fmt::format("ok: {} events verified", count)) != std::string::npos);
    auto j = replay_json(srv.data_dir());
    CHECK(j["events"].size() == count);
    CHECK(j["events"].back().at("seq") == count);
    std::vector<std::string> got;
    for (auto& [n, p] : j["state"]["projects"].items()) got.push_back(n);
    CHECK(got == expected);
  };
  check_live({"first-one"});
  create_project(srv.api(), "second-one", tmp.path());
  check_live({"first-one", "second-one"});
  CHECK(srv.running());
  CHECK(answers(srv.port()));
}

TEST_CASE("ports - 200 concurrent creations get distinct leases and kill -9 never leads to reuse",
          "[integration]") {
  temp_dir tmp;
  server srv(tmp.path());
  constexpr int n = 200, threads = 12;
  std::vector<http_result> results(n);
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      client c(srv.port());
      for (int i; (i = next++) < n;)
        results[i] = c.post("/api/projects", manifest_for(fmt::format("app-{:03}", i), tmp.path()));
    });
  for (auto& th : pool) th.join();

  std::set<uint16_t> production, preview;
  int created = 0;
  for (int i = 0; i < n; ++i) {
    INFO("app-" << i << ": " << results[i].describe());
    CHECK(results[i].status == 201);
    if (results[i].status != 201) continue;
    ++created;
    auto p = port_of(results[i].body, "production"), q = port_of(results[i].body, "preview");
    CHECK(p >= 8000);
    CHECK(p <= 9999);
    CHECK(q >= 4000);
    CHECK(q <= 7999);
    production.insert(p);
    preview.insert(q);
  }
  REQUIRE(created == n);
  CHECK(production.size() == n);
  // Linear probing from the name's slot: every port skipped on the way is leased by another
  // project (or busy on this host).
  for (int i = 0; i < n; ++i) {
    auto name = fmt::format("app-{:03}", i);
    auto got = port_of(results[i].body, "production");
    INFO(name << " got " << got << ", natural slot " << natural_production_port(name));
    for (uint16_t q = natural_production_port(name); q != got; q = q == 9999 ? 8000 : q + 1)
      CHECK((production.count(q) == 1 || !bindable(q)));
  }
  CHECK(preview.size() == n);
  CHECK(list_projects(srv.api()).size() == n);
  check_env_file(srv, results[0].body);
  check_env_file(srv, results[n - 1].body);

  srv.kill9();
  srv.start();
  auto restored = list_projects(srv.api());
  REQUIRE(restored.size() == n);
  for (auto& p : restored) {
    CHECK(production.count(port_of(p, "production")) == 1);
    CHECK(preview.count(port_of(p, "preview")) == 1);
  }

  // 20 more whose natural production slot (8000 + FNV-1a-64 % 2000) is already leased: a
  // server that forgot its leases in the crash would hand those ports out again.
  std::vector<std::string> colliding;
  for (int i = 0; colliding.size() < 20 && i < 100000; ++i) {
    auto name = fmt::format("more-{}", i);
    if (production.count(natural_production_port(name)) == 1) colliding.push_back(name);
  }
  REQUIRE(colliding.size() == 20);
  for (auto& name : colliding) {
    auto p = create_project(srv.api(), name, tmp.path());
    INFO(p.dump());
    CHECK(production.insert(port_of(p, "production")).second);  // never a leased one
    CHECK(preview.insert(port_of(p, "preview")).second);
    CHECK(port_of(p, "production") >= 8000);
    CHECK(port_of(p, "production") <= 9999);
  }
  CHECK(production.size() == n + 20);
  CHECK(preview.size() == n + 20);

  // Deleting a project releases its two leases.
  auto victim = results[7].body;
  auto r = srv.api().del("/api/projects/app-007");
  INFO(r.describe());
  REQUIRE(r.status == 200);
  CHECK(list_projects(srv.api()).size() == n + 19);
  auto j = replay_json(srv.data_dir());
  auto& table = j["state"]["ports"];
  CHECK(table.size() == 2 * (n + 19));
  CHECK(!table.contains(std::to_string(port_of(victim, "production"))));
  CHECK(!table.contains(std::to_string(port_of(victim, "preview"))));
}

TEST_CASE("delete removes folder and project but keeps the stream and frees the name", "[integration]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto& c = srv.api();
  create_project(c, "keeper", tmp.path());
  auto doomed = create_project(c, "doomed", tmp.path());
  REQUIRE(list_dir(srv.projects_dir()).count("doomed") == 1);

  auto r = c.del("/api/projects/doomed");
  INFO(r.describe());
  REQUIRE(r.status == 200);
  CHECK(r.body == json{{"deleted", "doomed"}});
  CHECK(list_dir(srv.projects_dir()) == std::set<std::string>{"keeper"});

  auto g = c.get("/api/projects/doomed");
  INFO(g.describe());
  CHECK(g.status == 404);
  CHECK(g.error_code() == "not_found");
  CHECK(c.del("/api/projects/doomed").status == 404);
  CHECK(list_projects(c).size() == 1);

  // The audit stream keeps the whole history.
  auto j = replay_json(srv.data_dir(), {"--project", "doomed"});
  std::vector<std::string> types;
  for (auto& e : j["events"]) types.push_back(e.at("type").get<std::string>());
  REQUIRE(types.size() >= 2);
  CHECK(types.front() == "project_created");
  CHECK(types.back() == "project_deleted");
  CHECK(j["state"]["projects"].empty());
  CHECK(j["state"]["ports"].empty());

  auto chk = c.get("/api/check/doomed");
  INFO(chk.describe());
  REQUIRE(chk.status == 200);
  CHECK(chk.body.at("valid") == true);
  CHECK(chk.body.at("available") == true);
  auto taken = c.get("/api/check/keeper");
  CHECK(taken.body.at("valid") == true);
  CHECK(taken.body.at("available") == false);

  auto again = create_project(c, "doomed", tmp.path());
  CHECK(list_dir(srv.projects_dir()).count("doomed") == 1);
  check_env_file(srv, again);
  CHECK(c.get("/api/projects/doomed").status == 200);
  CHECK(c.post("/api/projects", manifest_for("doomed", tmp.path())).status == 409);
}

TEST_CASE("update - PUT replaces the manifest and survives a restart", "[integration]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto created = create_project(srv.api(), "shop", tmp.path());

  json m = manifest_for("shop", tmp.path());
  m["env"] = {{"NODE_ENV", "production"}};
  m["preview"] = {{"command", {"npm", "run", "dev"}}};
  m["production"] = {{"command", {"node", "dist/server.js"}}, {"keep", 3}};
  m["secrets"] = {{"API_KEY", "hunter2-secret"}};
  auto r = srv.api().put("/api/projects/shop", m);
  INFO(r.describe());
  REQUIRE(r.status == 200);
  CHECK(r.raw.find("hunter2-secret") == std::string::npos);
  auto check_updated = [&](const json& p) {
    INFO(p.dump());
    CHECK(p.at("manifest").at("env") == json{{"NODE_ENV", "production"}});
    CHECK(p.at("manifest").at("preview").at("command") == json{"npm", "run", "dev"});
    CHECK(p.at("manifest").at("production").at("command") == json{"node", "dist/server.js"});
    CHECK(p.at("manifest").at("production").at("keep") == 3);
    CHECK(p.at("manifest").at("secrets") == json{{"API_KEY", "********"}});
    CHECK(p.at("ports") == created.at("ports"));
    CHECK(p.at("created") == created.at("created"));
  };
  check_updated(r.body);
  auto g = srv.api().get("/api/projects/shop");
  REQUIRE(g.status == 200);
  check_updated(g.body);

  auto missing = srv.api().put("/api/projects/nobody", manifest_for("nobody", tmp.path()));
  INFO(missing.describe());
  CHECK(missing.status == 404);
  CHECK(missing.error_code() == "not_found");

  srv.kill9();
  srv.start();
  auto g2 = srv.api().get("/api/projects/shop");
  INFO(g2.describe());
  REQUIRE(g2.status == 200);
  check_updated(g2.body);
  CHECK(g2.body.at("updated") == g.body.at("updated"));
  // Secrets never reach the log.
  auto j = replay_json(srv.data_dir());
  CHECK(j.dump().find("hunter2-secret") == std::string::npos);
}

TEST_CASE("config precedence is file then env then flags and help lists every option",
          "[integration]") {
  temp_dir tmp;
  auto p_file = free_port(), p_env = free_port(), p_flag = free_port();
  auto cfg = tmp / "berth.json";
  write_file(cfg, json{{"listen", fmt::format("127.0.0.1:{}", p_file)}, {"log_format", "json"}}.dump());

  {
    server_options o;
    o.pass_listen = false;
    o.extra_args = {"--config", cfg};
    server srv(tmp.path(), o, p_file);  // throws unless /health answers on p_file
    CHECK(answers(p_file));
    // log_format from the file: the server's own lines are JSON objects.
    auto log = srv.log();
    int json_lines = 0, other = 0;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("====", 0) == 0 || line.empty()) continue;
      auto j = json::parse(line, nullptr, false);
      (j.is_object() ? json_lines : other)++;
    }
    INFO(log);
    CHECK(json_lines > 0);
    CHECK(other == 0);
    CHECK(srv.terminate(10s) == 0);
  }
  {
    server_options o;
    o.pass_listen = false;
    o.extra_args = {"--config", cfg};
    o.env = {{"BERTH_LISTEN", fmt::format("127.0.0.1:{}", p_env)}};
    server srv(tmp.path(), o, p_env);
    CHECK(answers(p_env));
    CHECK(!answers(p_file));
    CHECK(srv.terminate(10s) == 0);
  }
  {
    server_options o;  // --listen 127.0.0.1:p_flag
    o.extra_args = {"--config", cfg};
    o.env = {{"BERTH_LISTEN", fmt::format("127.0.0.1:{}", p_env)}};
    server srv(tmp.path(), o, p_flag);
    CHECK(answers(p_flag));
    CHECK(!answers(p_env));
    CHECK(!answers(p_file));
    CHECK(srv.terminate(10s) == 0);
  }
  {
    // BERTH_CONFIG names the file as --config does.
    server_options o;
    o.pass_listen = false;
    o.env = {{"BERTH_CONFIG", cfg}};
    server srv(tmp.path(), o, p_file);
    CHECK(answers(p_file));
    CHECK(srv.terminate(10s) == 0);
  }

  auto help = run({"serve", "--help"}, {}, 10s);
  INFO(help.describe());
  CHECK(help.exit_code == 0);
  for (const char* opt :
       {"--listen", "--data", "--config", "--log-format", "--log-level", "--production-ports",
        "--preview-ports", "--max-body-bytes", "--http-threads", "--request-timeout-ms",
        "--scheduler-threads", "--http-queue", "--http-long-calls", "--tls-cert", "--tls-key", "--insecure-http"}) {
    INFO(opt);
    CHECK(help.out.find(opt) != std::string::npos);
  }

  auto bad = tmp / "bad.json";
  write_file(bad, R"({"listen": "127.0.0.1:1", "bogus_key": 1})");
  auto p = free_port();
  auto r = run({"serve", "--config", bad, "--data", tmp / "bad-data", "--listen",
                fmt::format("127.0.0.1:{}", p)},
               {}, 10s);
  INFO(r.describe());
  CHECK(!r.timed_out);
  CHECK(r.exit_code != 0);
  CHECK((r.out + r.err).find("bogus_key") != std::string::npos);
  CHECK(!answers(p));
}

TEST_CASE("SIGTERM exits 0 within seconds and the next start sees all data", "[integration]") {
  temp_dir tmp;
  server srv(tmp.path());
  for (auto n : {"one-app", "two-app", "three-app"}) create_project(srv.api(), n, tmp.path());
  auto listed = list_projects(srv.api());
  auto count = srv.event_count();

  auto t0 = std::chrono::steady_clock::now();
  int st = srv.terminate(5s);
  auto took = std::chrono::steady_clock::now() - t0;
  INFO(srv.log());
  CHECK(st == 0);
  CHECK(took < 5s);
  CHECK(!answers(srv.port()));

  srv.start();
  auto again = list_projects(srv.api());
  REQUIRE(again.size() == listed.size());
  for (size_t i = 0; i < listed.size(); ++i) CHECK(durable_view(again[i]) == durable_view(listed[i]));
  CHECK(srv.event_count() == count + 1);  // + the signed checkpoint appended at shutdown
  auto v = audit({"verify", "--data", srv.data_dir()});
  INFO(v.describe());
  CHECK(v.exit_code == 0);
}
