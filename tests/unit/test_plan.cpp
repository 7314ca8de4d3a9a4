// The plan's pure parts (runtime/plan): the manifest diff (every field family, secrets by name
// through digests), the secret digests and their key, what a deploy records, and the release
// file diff against a real release folder.
#include <catch2/catch.hpp>

#include "tests/unit/support.hpp"

#include <fmt/format.h>
#include <openssl/sha.h>

#include <algorithm>
#include <filesystem>

#include "http/plan_route.hpp"
#include "messages/manifest.hpp"
#include "runtime/pipeline/deploy.hpp"
#include "runtime/plan/deployed_with.hpp"
#include "runtime/plan/file_diff.hpp"
#include "runtime/plan/manifest_diff.hpp"
#include "runtime/release/release.hpp"

using namespace berth;
namespace fs = std::filesystem;
using json = nlohmann::json;
using berth::test::mode_of;
using berth::test::temp_dir;
using berth::test::write_file;

namespace {

json base_manifest() {
  return json::parse(R"({
    "name": "shop", "source": {"path": "/srv/shop"},
    "preview": {"command": ["python3", "server.py"]},
    "build": {"command": ["make"], "artifacts": ["dist"]},
    "production": {"command": ["python3", "dist/server.py"], "health": {"path": "/health"}, "keep": 3},
    "env": {"MODE": "prod", "OLD": "x"}, "secrets": {"TOKEN": "t0k3n-one", "DB": "db-pass"}})");
}

// A manifest's JSON form as a deploy records it (secret values masked).
json recorded(const json& m) {
  auto r = parse_manifest(m);
  REQUIRE(r.ok);
  return to_json(r.value, false);
}

manifest_side side(const json& m, std::map<std::string, std::string> digests = {}) {
  manifest_side s;
  s.manifest = recorded(m);
  s.digests = std::move(digests);
  s.digests_known = true;
  return s;
}

const manifest_change* find(const std::vector<manifest_change>& changes, const std::string& field) {
  auto it = std::find_if(changes.begin(), changes.end(), [&](auto& c) { return c.field == field; });
  return it == changes.end() ? nullptr : &*it;
}

std::vector<std::string> fields(const std::vector<manifest_change>& changes) {
  std::vector<std::string> out;
  for (auto& c : changes) out.push_back(c.field + " " + c.change);
  return out;
}

}  // namespace

TEST_CASE("manifest diff: the same manifest has no change, preview settings never count", "[plan]") {
  auto m = base_manifest();
  CHECK(diff_manifests(side(m), side(m)).empty());
  auto other = m;
  other["preview"]["command"] = {"python3", "other.py"};
  other["preview"]["limits"] = {{"memory_mb", 128}};
  CHECK(diff_manifests(side(m), side(other)).empty());
}

TEST_CASE("manifest diff: every field a deploy uses", "[plan]") {
  auto before = base_manifest();
  auto after = before;
  after["source"] = {{"path", "/srv/shop-v2"}};
  after["build"]["command"] = {"make", "release"};
  after["build"]["artifacts"] = {"dist", "VERSION"};
  after["build"]["limits"] = {{"memory_mb", 1024}};
  after["build"]["secrets"] = {"TOKEN"};
  after["production"]["command"] = {"python3", "dist/app.py"};
  after["production"]["health"] = {{"path", "/ready"}};
  after["production"]["limits"] = {{"cpu", 0.5}};
  after["production"]["keep"] = 7;
  after["production"]["canary"] = {{"steps", {10, 50}}};
  after["domains"] = {"shop.example.com"};
  auto changes = diff_manifests(side(before), side(after));
  INFO(json(fields(changes)).dump());
  for (auto* f : {"source", "build.command", "build.artifacts", "production.command", "production.health",
                  "production.keep"}) {
    INFO(f);
    REQUIRE(find(changes, f));
    CHECK(find(changes, f)->change == "changed");
  }
  for (auto* f : {"build.limits", "build.secrets", "production.limits", "production.canary", "domains"}) {
    INFO(f);
    REQUIRE(find(changes, f));
    CHECK(find(changes, f)->change == "added");
    CHECK(find(changes, f)->before.is_null());
  }
  CHECK(find(changes, "production.command")->before == json({"python3", "dist/server.py"}));
  CHECK(find(changes, "production.command")->after == json({"python3", "dist/app.py"}));
  CHECK(find(changes, "production.keep")->after == 7);
  CHECK(find(changes, "production.canary")->after["steps"] == json({10, 50}));
  // And back: what was added is removed.
  auto back = diff_manifests(side(after), side(before));
  CHECK(find(back, "domains")->change == "removed");
  CHECK(find(back, "domains")->after.is_null());
  CHECK(find(back, "production.canary")->change == "removed");
}

TEST_CASE("manifest diff: runtime and image (absent runtime is process)", "[plan]") {
  auto before = base_manifest();
  auto after = before;
  after["runtime"] = "docker";
  after["image"] = {{"base", "python:3.12-slim"}};
  auto changes = diff_manifests(side(before), side(after));
  INFO(json(fields(changes)).dump());
  REQUIRE(find(changes, "runtime"));
  CHECK(find(changes, "runtime")->before == "process");
  CHECK(find(changes, "runtime")->after == "docker");
  REQUIRE(find(changes, "image"));
  CHECK(find(changes, "image")->change == "added");
  CHECK_FALSE(find(changes, "volumes"));  // {} is no value
}

TEST_CASE("manifest diff: env keys added, removed and changed, with their values", "[plan]") {
  auto before = base_manifest();
  auto after = before;
  after["env"] = {{"MODE", "staging"}, {"NEW", "1"}};
  auto changes = diff_manifests(side(before), side(after));
  CHECK(fields(changes) == std::vector<std::string>{"env.MODE changed", "env.NEW added", "env.OLD removed"});
  CHECK(find(changes, "env.MODE")->before == "prod");
  CHECK(find(changes, "env.MODE")->after == "staging");
  CHECK(find(changes, "env.NEW")->after == "1");
  CHECK(find(changes, "env.OLD")->before == "x");
}

TEST_CASE("manifest diff: secrets by name, a changed value through its digest, never a value", "[plan]") {
  std::string key(32, 'k');
  auto before = base_manifest();
  auto after = before;
  after["secrets"] = {{"TOKEN", "t0k3n-two"}, {"DB", "db-pass"}, {"NEW_KEY", "n3w-value"}};
  auto b = side(before, secret_digests(key, {{"TOKEN", "t0k3n-one"}, {"DB", "db-pass"}}));
  auto a = side(after, secret_digests(key, {{"TOKEN", "t0k3n-two"}, {"DB", "db-pass"}, {"NEW_KEY", "n3w-value"}}));
  auto changes = diff_manifests(b, a);
  CHECK(fields(changes) == std::vector<std::string>{"secrets.NEW_KEY added", "secrets.TOKEN changed"});
  for (auto& c : changes) {
    CHECK(c.before.is_null());
    CHECK(c.after.is_null());
  }
  // Nothing of a value in the answer either.
  plan_view v;
  v.project = "shop";
  v.current = "aaaaaaaaaaaa";
  v.manifest_known = true;
  v.manifest = changes;
  auto text = to_json(v).dump();
  for (auto* value : {"t0k3n-one", "t0k3n-two", "n3w-value", "db-pass"}) CHECK(text.find(value) == std::string::npos);

  SECTION("removed") {
    auto gone = after;
    gone["secrets"].erase("DB");
    auto g = side(gone, secret_digests(key, {{"TOKEN", "t0k3n-two"}, {"NEW_KEY", "n3w-value"}}));
    CHECK(fields(diff_manifests(a, g)) == std::vector<std::string>{"secrets.DB removed"});
  }
  SECTION("without digests only names are compared, and the caller learns which could not be") {
    auto blind = b;
    blind.digests.clear();
    blind.digests_known = false;
    std::vector<std::string> unknown;
    CHECK(fields(diff_manifests(blind, a, &unknown)) == std::vector<std::string>{"secrets.NEW_KEY added"});
    CHECK(unknown == std::vector<std::string>{"DB", "TOKEN"});
  }
}

TEST_CASE("manifest diff: nothing before is a first deploy, everything is added", "[plan]") {
  manifest_side none;
  none.digests_known = true;
  auto changes = diff_manifests(none, side(base_manifest()));
  for (auto& c : changes) CHECK(c.change == "added");
  for (auto* f : {"source", "build.command", "production.command", "production.health", "production.keep",
                  "runtime", "env.MODE", "secrets.TOKEN"})
    CHECK(find(changes, f));
}

TEST_CASE("manifest diff: a recorded manifest is normalized before it is compared", "[plan]") {
  auto m = base_manifest();
  m["source"] = {{"git", "https://git.example.com/shop.git"}, {"ref", "v2"}};
  auto rec = recorded(m);
  CHECK(rec["secrets"]["TOKEN"] == "********");
  CHECK(normalized_manifest(rec) == rec);  // masked values parse back as they are
  auto older = rec;
  older["production"].erase("keep");  // a field an older berth left out: its default
  CHECK(normalized_manifest(older)["production"]["keep"] == 5);
  CHECK(normalized_manifest(json{{"not", "a manifest"}}) == json{{"not", "a manifest"}});
}

TEST_CASE("secret digests: keyed, per name, not a plain hash of the value", "[plan]") {
  temp_dir tmp("berth-plan");
  project_paths paths = paths_for(tmp.path.string(), "shop");
  fs::create_directories(paths.root);
  std::string key;
  auto missing = secret_digest_key(paths, false, &key);
  CHECK(missing.which() == status::code::not_found);
  REQUIRE(secret_digest_key(paths, true, &key));
  CHECK(key.size() == 32);
  auto file = paths.root / ".secret-digest-key";
  CHECK(mode_of(file) == 0600);
  std::string again;
  REQUIRE(secret_digest_key(paths, false, &again));
  CHECK(again == key);
  REQUIRE(secret_digest_key(paths, true, &again));  // made once
  CHECK(again == key);

  auto d = secret_digests(key, {{"A", "same-value"}, {"B", "same-value"}});
  CHECK(d.at("A").size() == 64);
  CHECK(d.at("A") != d.at("B"));
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>("same-value"), 10, md);
  std::string plain;
  for (auto c : md) plain += fmt::format("{:02x}", c);
  CHECK(d.at("A") != plain);
  CHECK(secret_digests(std::string(32, 'x'), {{"A", "same-value"}}).at("A") != d.at("A"));
  CHECK(secret_digests("", {{"A", "v"}}).empty());

  SECTION("a key berth does not own alone is refused") {
    ::chmod(file.c_str(), 0644);
    CHECK(secret_digest_key(paths, true, &again).which() == status::code::invalid_argument);
  }
}

TEST_CASE("deployed_with: the manifest without values and the digests of what the release gets", "[plan]") {
  temp_dir tmp("berth-plan");
  deploy_inputs in;
  in.paths = paths_for(tmp.path.string(), "shop");
  fs::create_directories(in.paths.root);
  auto parsed = parse_manifest(base_manifest());
  REQUIRE(parsed.ok);
  in.spec = parsed.value;
  in.env = {{"MODE", "prod"}, {"OLD", "x"}, {"TOKEN", "t0k3n-one"}, {"DB", "db-pass"}};
  auto rec = deployed_with(in);
  auto text = rec.dump();
  CHECK(text.find("t0k3n-one") == std::string::npos);
  CHECK(text.find("db-pass") == std::string::npos);
  auto back = read_deployed_with(json{{"deployed_with", rec}, {"hash", "aaaaaaaaaaaa"}});
  REQUIRE(back.known);
  REQUIRE(back.has_digests);
  std::string key;
  REQUIRE(secret_digest_key(in.paths, false, &key));
  CHECK(back.digests == secret_digests(key, {{"TOKEN", "t0k3n-one"}, {"DB", "db-pass"}}));
  CHECK(back.manifest == to_json(in.spec, false));
  CHECK_FALSE(read_deployed_with(json{{"hash", "aaaaaaaaaaaa"}}).known);  // an older deploy
}

TEST_CASE("release file diff: added, removed, changed with sizes, against a real release", "[plan]") {
  temp_dir tmp("berth-plan");
  auto build = tmp.path / "build", releases = tmp.path / "production";
  write_file(build / "dist/index.html", "release 1\n");
  write_file(build / "dist/same.txt", "unchanged");
  write_file(build / "dist/old.js", "old();");
  write_file(build / "dist/run.sh", "#!/bin/sh\n", 0644);
  write_file(build / "dist/swap.txt", "abcd");
  fs::create_symlink("same.txt", build / "dist/link");
  write_file(build / "notes.txt", "not an artifact");
  fs::create_directories(releases);
  std::string current;
  REQUIRE(hash_artifacts(build, {"dist"}, &current));
  REQUIRE(package_release(build, {"dist"}, releases, current, nullptr));

  SECTION("the same build: no change and the current hash") {
    std::string hash;
    std::vector<file_change> changes;
    REQUIRE(diff_release(build, {"dist"}, releases / current, &hash, &changes));
    CHECK(hash == current);
    CHECK(changes.empty());
  }
  SECTION("every kind of change") {
    write_file(build / "dist/index.html", "release 22\n");  // size
    write_file(build / "dist/swap.txt", "wxyz");             // bytes, same size
    ::chmod((build / "dist/run.sh").c_str(), 0755);          // mode
    fs::remove(build / "dist/old.js");
    write_file(build / "dist/new.js", "new();!");
    fs::remove(build / "dist/link");
    fs::create_symlink("index.html", build / "dist/link");
    fs::create_directories(build / "dist/empty");
    write_file(build / "dist/assets/a.css", "a{}");
    write_file(build / "notes.txt", "still not an artifact");
    std::string hash, expected;
    std::vector<file_change> changes;
    REQUIRE(diff_release(build, {"dist"}, releases / current, &hash, &changes));
    REQUIRE(hash_artifacts(build, {"dist"}, &expected));
    CHECK(hash == expected);
    CHECK(hash != current);
    std::vector<std::string> got;
    for (auto& c : changes)
      got.push_back(fmt::format("{} {} {} {}", c.change, c.path, c.size_before, c.size_after));
    CHECK(got == std::vector<std::string>{"added dist/assets/a.css -1 3", "added dist/empty/ -1 -1",
                                          "changed dist/index.html 10 11", "changed dist/link -1 -1",
                                          "added dist/new.js -1 7", "removed dist/old.js 6 -1",
                                          "changed dist/run.sh 10 10", "changed dist/swap.txt 4 4"});
  }
  SECTION("no release yet: everything is added") {
    std::string hash;
    std::vector<file_change> changes;
    REQUIRE(diff_release(build, {"dist"}, "", &hash, &changes));
    CHECK(hash == current);
    CHECK(changes.size() == 6);  // the files and the link; their folder is explained by them
    for (auto& c : changes) CHECK(c.change == "added");
  }
  SECTION("a missing artifact fails as packaging would") {
    std::string hash;
    std::vector<file_change> changes;
    auto s = diff_release(build, {"dist", "missing"}, releases / current, &hash, &changes);
    CHECK(s.which() == status::code::not_found);
    CHECK(changes.empty());
  }
}
