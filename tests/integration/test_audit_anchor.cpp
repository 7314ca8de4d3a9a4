// An anchored audit log (issue 13, item 5), through the real `berth serve` and `berth audit`:
// checkpoints signed with a key kept outside the data dir, every N events and at shutdown (none
// while idle); `berth audit verify` catches a tail rewritten with recomputed hashes (the chain
// alone does not) and, against a head printed by `berth audit head`, a truncated log; the key
// file's modes.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/common/log_tamper.hpp"
#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A server whose audit key lives in <tmp>/keys (outside its data dir), checkpointing every `every`.
server_options anchored(const temp_dir& tmp, int every) {
  return deploy_server_options({"--audit-key", tmp / "keys/audit.key", "--audit-checkpoint-every",
                                std::to_string(every)});
}

void create_projects(server& srv, const temp_dir& tmp, int n, const std::string& prefix = "proj") {
  for (int i = 0; i < n; ++i) {
    auto r = srv.api().post("/api/projects", manifest_for(prefix + std::to_string(i), tmp.path()));
    INFO(r.describe());
    REQUIRE(r.status == 201);
  }
}

// Every event of the log (`berth audit replay --json`).
json all_events(const std::string& data) {
  auto r = run({"audit", "replay", "--data", data, "--json"});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out).at("events");
}

std::vector<json> checkpoints_of(const json& events) {
  std::vector<json> out;
  for (auto& e : events)
    if (e.value("stream", "") == "audit" && e.value("type", "") == "log_checkpoint") out.push_back(e);
  return out;
}

json data_of(const json& e) {
  auto& d = e.at("data");
  return d.is_string() ? json::parse(d.get<std::string>()) : d;
}

// The public key as `berth audit key` prints it, saved to <tmp>/audit.pub.
std::string public_key_file(const temp_dir& tmp) {
  auto r = run({"audit", "key", "--audit-key", tmp / "keys/audit.key"});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("BEGIN PUBLIC KEY") != std::string::npos);
  write_file(tmp / "audit.pub", r.out);
  return tmp / "audit.pub";
}

run_result verify(const std::string& data, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"audit", "verify", "--data", data};
  args.insert(args.end(), extra.begin(), extra.end());
  return run(args);
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("audit - checkpoints every N events and at shutdown, none while idle", "[integration][audit]") {
  temp_dir tmp;
  server srv(tmp.path(), anchored(tmp, 5));
  create_projects(srv, tmp, 6);  // each creation appends its port leases and project_created

  // Idle: nothing is appended, no checkpoint either. (A checkpoint due after the last
  // creation is appended just after that creation's answer: let it land first.)
  uint64_t before = srv.event_count();
  REQUIRE(eventually([&] {
    std::this_thread::sleep_for(200ms);
    auto now = srv.event_count();
    return std::exchange(before, now) == now;
  }, 5s));
  std::this_thread::sleep_for(1500ms);
  CHECK(srv.event_count() == before);

  REQUIRE(srv.terminate() == 0);
  auto events = all_events(srv.data_dir());
  auto cps = checkpoints_of(events);
  REQUIRE(cps.size() >= 2);
  uint64_t last_signed = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    auto d = data_of(cps[i]);
    INFO("checkpoint " << cps[i].dump());
    auto seq = d.at("seq").get<uint64_t>();
    CHECK(seq < cps[i].at("seq").get<uint64_t>());
    if (i + 1 < cps.size()) CHECK(seq >= last_signed + 5);  // one per 5 events, not more
    last_signed = seq;
  }
  // The shutdown checkpoint closes the log and signs the event just before it.
  auto& last = events.back();
  CHECK(last.value("type", "") == "log_checkpoint");
  CHECK(data_of(last).at("seq").get<uint64_t>() == last.at("seq").get<uint64_t>() - 1);
  CHECK(checkpoints_of(events).size() == cps.size());

  // A start and a stop with nothing done: never two checkpoints in a row.
  srv.start();
  REQUIRE(srv.terminate() == 0);
  events = all_events(srv.data_dir());
  for (size_t i = 1; i < events.size(); ++i) {
    INFO("event " << events[i].dump());
    CHECK_FALSE((events[i].value("type", "") == "log_checkpoint" &&
                 events[i - 1].value("type", "") == "log_checkpoint"));
  }

  auto key = public_key_file(tmp);
  auto ok = verify(srv.data_dir(), {"--public-key", key});
  INFO(ok.describe());
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("anchored:") != std::string::npos);
}

TEST_CASE("audit - verify detects a tail rewritten with recomputed hashes", "[integration][audit]") {
  temp_dir tmp;
  server srv(tmp.path(), anchored(tmp, 1000));
  create_projects(srv, tmp, 3);
  REQUIRE(srv.terminate() == 0);  // the shutdown checkpoint signs the head
  auto key = public_key_file(tmp);
  {
    auto r = verify(srv.data_dir(), {"--public-key", key});
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);  // untouched: passes
  }

  // Someone with write access to the data dir rewrites project_created of proj1 and recomputes
  // every hash after it (what the chain alone cannot catch).
  auto events = all_events(srv.data_dir());
  uint64_t target = 0;
  for (auto& e : events)
    if (e.value("type", "") == "project_created" && e.value("stream", "") == "project/proj1")
      target = e.at("seq").get<uint64_t>();
  REQUIRE(target > 0);
  berth::test::rewrite_log_from(srv.data_dir() + "/events", target, [](berth::event_record& e) {
    auto d = json::parse(e.data);
    d["manifest"]["env"] = {{"INJECTED", "1"}};
    e.data = d.dump();
  });

  auto chain_only = verify(srv.data_dir(), {"--json", "--public-key", key});
  INFO(chain_only.describe());
  auto j = json::parse(chain_only.out);
  CHECK(j.value("chain_ok", false));  // the hash chain is consistent again ...
  CHECK(chain_only.exit_code == 1);   // ... but the signed checkpoint no longer matches
  CHECK_FALSE(j.value("ok", true));
  auto text = verify(srv.data_dir(), {"--public-key", key});
  INFO(text.describe());
  CHECK(text.exit_code == 1);
  CHECK(text.out.find("no longer matches") != std::string::npos);
  CHECK(text.out.find("checkpoint at seq " + std::to_string(events.back().at("seq").get<uint64_t>())) !=
        std::string::npos);

  // With the key file instead of --public-key, the same.
  CHECK(verify(srv.data_dir(), {"--audit-key", tmp / "keys/audit.key"}).exit_code == 1);
}

TEST_CASE("audit - a truncated log fails verify against the printed head", "[integration][audit]") {
  temp_dir tmp;
  server srv(tmp.path(), anchored(tmp, 4));
  create_projects(srv, tmp, 3, "early");
  // The head, signed, as an operator would keep it elsewhere.
  auto head = run({"audit", "head", "--data", srv.data_dir(), "--audit-key", tmp / "keys/audit.key"});
  INFO(head.describe());
  REQUIRE(head.exit_code == 0);
  auto signed_head = json::parse(head.out);
  CHECK(signed_head.at("signature").get<std::string>().size() == 128);
  CHECK(signed_head.at("public_key").get<std::string>().size() == 64);
  auto head_seq = signed_head.at("seq").get<uint64_t>();
  write_file(tmp / "head.json", head.out);
  REQUIRE(srv.terminate() == 0);
  auto key = public_key_file(tmp);

  auto ok = verify(srv.data_dir(), {"--public-key", key, "--head", tmp / "head.json"});
  INFO(ok.describe());
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("anchored head seq " + std::to_string(head_seq) + " matches") != std::string::npos);

  // Cut the log off before the anchored head: the checkpoints that remain still match (nothing
  // inside the log can tell), but the head kept elsewhere does not.
  berth::test::truncate_log_from(srv.data_dir() + "/events", head_seq - 1);
  auto no_anchor = verify(srv.data_dir(), {"--public-key", key});
  INFO(no_anchor.describe());
  CHECK(no_anchor.exit_code == 0);
  auto cut = verify(srv.data_dir(), {"--public-key", key, "--head", tmp / "head.json"});
  INFO(cut.describe());
  CHECK(cut.exit_code == 1);
  CHECK(cut.out.find("truncated") != std::string::npos);
  // The head given inline (its text) works the same.
  auto inline_head = verify(srv.data_dir(), {"--public-key", key, "--head", head.out});
  INFO(inline_head.describe());
  CHECK(inline_head.exit_code == 1);
}

TEST_CASE("audit - the key file is created 0600 in a 0700 folder, and loose or foreign keys are refused",
          "[integration][audit]") {
  temp_dir tmp;
  auto key = tmp / "keys/audit.key";
  {
    server srv(tmp.path(), anchored(tmp, 1000));
    CHECK(mode_of(key) == 0600);
    CHECK(mode_of(tmp / "keys") == 0700);
    CHECK(srv.log().find("audit key: created") != std::string::npos);
  }
  auto start = [&](const std::string& key_path) {
    return run({"serve", "--listen", "127.0.0.1:" + std::to_string(free_port()), "--data", tmp / "data2",
                "--switch-mode", "direct", "--audit-key", key_path},
               {}, 20s);
  };
  // Readable by others: whoever read it could sign a forged log.
  REQUIRE(::chmod(key.c_str(), 0644) == 0);
  auto r = start(key);
  INFO(r.describe());
  CHECK(r.exit_code == 1);
  CHECK((r.out + r.err).find("mode 0644") != std::string::npos);
  CHECK_FALSE(fs::exists(tmp / "data2/token"));  // refused before anything was made
  REQUIRE(::chmod(key.c_str(), 0600) == 0);
  if (::geteuid() == 0) {
    REQUIRE(::chown(key.c_str(), 65534, 65534) == 0);
    r = start(key);
    INFO(r.describe());
    CHECK(r.exit_code == 1);
    CHECK((r.out + r.err).find("belongs to uid 65534") != std::string::npos);
    REQUIRE(::chown(key.c_str(), 0, 0) == 0);
  }
  // Inside the data dir: anything that can write there could sign.
  r = start(tmp / "data2/audit.key");
  INFO(r.describe());
  CHECK(r.exit_code == 1);
  CHECK((r.out + r.err).find("outside the data dir") != std::string::npos);
}
