#include <catch2/catch.hpp>

#include "messages/manifest.hpp"
#include "messages/project_state.hpp"

using namespace berth;
using json = nlohmann::json;

TEST_CASE("project names follow the DNS label rule", "[manifest]") {
  for (auto* ok : {"shop", "my-app-2", "abc", "a23"}) CHECK(check_name(ok).valid);
  std::string sixty_three(63, 'a'), sixty_four(64, 'a');
  CHECK(check_name(sixty_three).valid);
  struct bad_case { std::string name; const char* why; };
  for (auto& c : std::vector<bad_case>{{"ab", "at least 3"},
                                       {sixty_four, "at most 63"},
                                       {"Shop", "lowercase"},
                                       {"../x", "lowercase"},
                                       {"1shop", "start with"},
                                       {"shop-", "end with"},
                                       {"sh_op", "may contain"},
                                       {"sh\xc3\xb6p", "may contain"},
                                       {std::string("sh\0op", 5), "may contain"},
                                       {"api", "reserved"},
                                       {"admin", "reserved"},
                                       {"www", "reserved"}}) {
    auto r = check_name(c.name);
    INFO(c.name);
    CHECK_FALSE(r.valid);
    CHECK_THAT(r.reason, Catch::Contains(c.why));
  }
}

TEST_CASE("a full manifest parses and round-trips through its JSON form", "[manifest]") {
  auto j = json::parse(R"({
    "name": "shop", "source": {"path": "/srv/shop"},
    "preview": {"command": ["npm", "run", "dev"], "health": {"path": "/"}},
    "build": {"command": ["npm", "run", "build"], "artifacts": ["dist", "package.json"]},
    "production": {"command": ["node", "dist/server.js"],
                   "health": {"path": "/health", "timeout_s": 60, "interval_ms": 500, "min_healthy_s": 3},
                   "keep": 5},
    "env": {"NODE_ENV": "production"}, "secrets": {"API_KEY": "s3cret"}})");
  auto r = parse_manifest(j);
  REQUIRE(r.ok);
  CHECK(r.value.production_health.min_healthy_s == 3);
  CHECK(r.value.artifacts == std::vector<std::string>{"dist", "package.json"});
  auto out = to_json(r.value);
  CHECK(out["secrets"]["API_KEY"] == "********");
  CHECK(out.dump().find("s3cret") == std::string::npos);
  auto again = parse_manifest(out);
  REQUIRE(again.ok);
  CHECK(again.value.production_command == r.value.production_command);
  CHECK(to_json(r.value, true)["secrets"]["API_KEY"] == "s3cret");
}

TEST_CASE("bad manifests are refused with the offending field named", "[manifest]") {
  struct bad_case { const char* body; const char* field; };
  for (auto& c : std::vector<bad_case>{
           {R"([1,2])", "must be an object"},
           {R"({"source":{"path":"/x"}})", "name: is required"},
           {R"({"name":5,"source":{"path":"/x"}})", "name:"},
           {R"({"name":"shop"})", "source: is required"},
           {R"({"name":"shop","source":{"path":"x"}})", "source.path: must be absolute"},
           {R"({"name":"shop","source":{"path":"/x","git":"y"}})", "exactly one"},
           {R"({"name":"shop","source":{"git":"--upload-pack=evil"}})", "source.git"},
           {R"({"name":"shop","source":{"path":"/x"},"colour":1})", "colour: unknown field"},
           {R"({"name":"shop","source":{"path":"/x"},"build":{"foo":1}})", "build.foo: unknown field"},
           {R"({"name":"shop","source":{"path":"/x"},"build":{"command":"npm run"}})", "build.command"},
           {R"({"name":"shop","source":{"path":"/x"},"build":{"command":[]}})", "build.command"},
           {R"({"name":"shop","source":{"path":"/x"},"build":{"artifacts":["../etc"]}})", "build.artifacts"},
           {R"({"name":"shop","source":{"path":"/x"},"build":{"artifacts":["/etc"]}})", "build.artifacts"},
           {R"({"name":"shop","source":{"path":"/x"},"production":{"keep":-1}})", "production.keep"},
           {R"({"name":"shop","source":{"path":"/x"},"production":{"keep":1e12}})", "production.keep"},
           {R"({"name":"shop","source":{"path":"/x"},"production":{"health":{"path":"health"}}})", "health.path"},
           {R"({"name":"shop","source":{"path":"/x"},"env":{"PORT":"1"}})", "env.PORT"},
           {R"({"name":"shop","source":{"path":"/x"},"env":{"1BAD":"1"}})", "env.1BAD"},
           {R"({"name":"shop","source":{"path":"/x"},"env":{"A":1}})", "env.A"},
       }) {
    INFO(c.body);
    auto r = parse_manifest(json::parse(c.body));
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.error, Catch::Contains(c.field));
  }
}

namespace {
event_record make_event(uint64_t seq, const std::string& stream, const std::string& type,
                        const std::string& data) {
  event_record e;
  e.seq = seq;
  e.stream = stream;
  e.type = type;
  e.ts_us = 1000 * static_cast<int64_t>(seq);
  e.data = data;
  return e;
}
}  // namespace

TEST_CASE("a project's state is the fold of its events", "[manifest]") {
  auto m = parse_manifest(json::parse(R"({"name":"shop","source":{"path":"/x"},"env":{"A":"1"}})")).value;
  project_state s;
  fold(s, make_event(1, "project/shop", ev::project_created, project_created_data(m, 8123, 4123)));
  CHECK(s.exists);
  CHECK(s.production_port == 8123);
  CHECK(s.spec.env.at("A") == "1");
  m.env["A"] = "2";
  fold(s, make_event(2, "project/shop", ev::project_updated, project_updated_data(m)));
  CHECK(s.spec.env.at("A") == "2");
  CHECK(s.created_us == 1000);
  CHECK(s.updated_us == 2000);
  CHECK(s.events == 2);
  fold(s, make_event(3, "project/shop", ev::project_deleted, "{}"));
  CHECK_FALSE(s.exists);
  fold(s, make_event(4, "project/shop", ev::project_created, project_created_data(m, 8200, 4200)));
  CHECK(s.exists);
  CHECK(s.production_port == 8200);
  CHECK(s.events == 1);
}

TEST_CASE("the port table is the fold of leases and releases", "[manifest]") {
  port_table t;
  fold(t, make_event(1, "ports", ev::port_leased, port_leased_data({8001, "a", port_kind::production})));
  fold(t, make_event(2, "ports", ev::port_leased, port_leased_data({4001, "a", port_kind::preview})));
  fold(t, make_event(3, "ports", ev::port_leased, port_leased_data({8002, "b", port_kind::production})));
  fold(t, make_event(4, "ports", ev::port_released,
                     port_released_data({8001, "a", port_kind::production}, "deleted")));
  CHECK(t.size() == 2);
  CHECK(t.count(8001) == 0);
  CHECK(t.at(4001).kind == port_kind::preview);
  CHECK(t.at(8002).project == "b");
}

TEST_CASE("ISO-8601 times parse and print", "[manifest]") {
  int64_t ts = 0;
  REQUIRE(parse_iso8601("2026-11-23T10:00:00Z", ts));
  CHECK(iso8601(ts) == "2026-11-23T10:00:00.000000Z");
  REQUIRE(parse_iso8601("2026-11-23T12:00:00.5+02:00", ts));
  CHECK(iso8601(ts) == "2026-11-23T10:00:00.500000Z");
  CHECK_FALSE(parse_iso8601("yesterday", ts));
  CHECK_FALSE(parse_iso8601("2026-11-23T10:00:00Zjunk", ts));
}

TEST_CASE("a workspace source parses, with or without a seed, and round-trips", "[manifest]") {
  auto parse = [](const char* source) {
    return parse_manifest(json{{"name", "shop"}, {"source", json::parse(source)}});
  };
  auto plain = parse(R"({"workspace": {}})");
  REQUIRE(plain.ok);
  CHECK(plain.value.source_workspace);
  CHECK(std::string(plain.value.source_kind()) == "workspace");
  CHECK(to_json(plain.value)["source"] == json::parse(R"({"workspace": {}})"));

  auto from_path = parse(R"({"workspace": {"seed": {"path": "/srv/shop"}}})");
  REQUIRE(from_path.ok);
  CHECK(from_path.value.seed_path == "/srv/shop");
  auto again = parse_manifest(to_json(from_path.value));
  REQUIRE(again.ok);
  CHECK(again.value.seed_path == "/srv/shop");
  CHECK(again.value.source_workspace);

  auto from_git = parse(R"({"workspace": {"seed": {"git": "https://example.com/x.git"}}})");
  REQUIRE(from_git.ok);
  CHECK(from_git.value.seed_ref == "main");
  CHECK(from_git.value.source_git.empty());  // not a git project: the seed is used once

  struct bad_case { const char* source; const char* why; };
  for (auto& c : std::vector<bad_case>{{R"({"workspace": {}, "path": "/x"})", "cannot be combined"},
                                       {R"({"workspace": {"seed": {}}})", "exactly one of"},
                                       {R"({"workspace": {"seed": {"path": "rel"}}})", "must be absolute"},
                                       {R"({"workspace": {"seed": {"path": "/x", "ref": "v1"}}})", "only to git"},
                                       {R"({"workspace": {"seed": {"git": "https://u:t@h/x"}}})", "credentials"},
                                       {R"({"workspace": {"other": 1}})", "other"},
                                       {R"({"workspace": []})", "workspace"},
                                       {R"({})", "exactly one of 'path', 'git' or 'workspace'"}}) {
    INFO(c.source);
    auto r = parse(c.source);
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.error, Catch::Contains(c.why));
  }
}

TEST_CASE("source_updated folds into the project record and leaves the manifest alone", "[manifest]") {
  project_record p;
  event_record created{1, "project/shop", ev::project_created, 100,
                       project_created_data(parse_manifest(json::parse(
                                                R"({"name":"shop","source":{"workspace":{}}})")).value,
                                            8000, 8001)};
  fold(p, created);
  event_record updated{2, "project/shop", ev::source_updated, 200,
                       source_updated_data(std::string(64, 'a'), 3, 120, "write", "src/app.js")};
  fold(p, updated);
  CHECK(p.spec.source_workspace);
  CHECK(p.source.hash == std::string(64, 'a'));
  CHECK(p.source.files == 3);
  CHECK(p.source.bytes == 120);
  CHECK(p.source.via == "write");
  CHECK(p.source.path == "src/app.js");
  CHECK(p.source.seq == 2);
  CHECK(p.source.ts_us == 200);
}
