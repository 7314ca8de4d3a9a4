// Unit tests for runtime/eventlog/replay_load: load_replay with a replay snapshot gives exactly
// the folds of every event (every field compared), and a snapshot that fails its check or
// cannot be decoded is refused with the reason and everything is folded.
#include <catch2/catch.hpp>

#include <rocksdb/db.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/eventlog/event_codec.hpp"
#include "runtime/eventlog/event_log.hpp"
#include "tests/unit/support.hpp"
#include "runtime/eventlog/replay_load.hpp"

using namespace berth;
using json = nlohmann::json;

namespace {

namespace fs = std::filesystem;

using test::open_log;


// Every field of the folds, compared one by one (independent of the snapshot encoding).
void check_same(const instance_ref& a, const instance_ref& b) {
  CHECK(a.id == b.id);
  CHECK(a.port == b.port);
  CHECK(a.pid == b.pid);
  CHECK(a.project == b.project);
}

void check_same(const project_state& a, const project_state& b) {
  CHECK(a.exists == b.exists);
  CHECK(a.name == b.name);
  CHECK(to_json(a.spec, true) == to_json(b.spec, true));
  CHECK(a.spec.secrets == b.spec.secrets);
  CHECK(a.spec.preview_health.interval_ms == b.spec.preview_health.interval_ms);
  CHECK(a.spec.production_limits == b.spec.production_limits);
  CHECK(a.production_port == b.production_port);
  CHECK(a.preview_port == b.preview_port);
  CHECK(a.created_us == b.created_us);
  CHECK(a.updated_us == b.updated_us);
  CHECK(a.sandbox_uid == b.sandbox_uid);
  CHECK(a.sandbox_gid == b.sandbox_gid);
  CHECK(a.preview.status == b.preview.status);
  check_same(a.preview.process, b.preview.process);
  CHECK(a.preview.reason == b.preview.reason);
  CHECK(a.preview.exits_us == b.preview.exits_us);
  CHECK(a.preview.last_seq == b.preview.last_seq);
  CHECK(a.preview.events == b.preview.events);
  const auto& p = a.production;
  const auto& q = b.production;
  CHECK(p.status == q.status);
  CHECK(p.current == q.current);
  check_same(p.process, q.process);
  CHECK(p.reason == q.reason);
  CHECK(p.exits_us == q.exits_us);
  CHECK(p.order == q.order);
  CHECK(p.last_seq == q.last_seq);
  CHECK(p.events == q.events);
  REQUIRE(p.releases.size() == q.releases.size());
  for (auto& [hash, r] : p.releases) {
    INFO("release " << hash);
    REQUIRE(q.releases.count(hash) == 1);
    auto& s = q.releases.at(hash);
    CHECK(r.hash == s.hash);
    CHECK(r.deployment == s.deployment);
    CHECK(r.created_us == s.created_us);
    CHECK(r.last_used_us == s.last_used_us);
    CHECK(r.deployed_us == s.deployed_us);
    CHECK(r.rolled_back_to_us == s.rolled_back_to_us);
    CHECK(r.rolled_back_from_us == s.rolled_back_from_us);
    CHECK(r.activations == s.activations);
  }
  REQUIRE(p.deployments.size() == q.deployments.size());
  for (auto& [id, d] : p.deployments) {
    INFO("deployment " << id);
    REQUIRE(q.deployments.count(id) == 1);
    auto& e = q.deployments.at(id);
    CHECK(d.id == e.id);
    CHECK(d.project == e.project);
    CHECK(d.kind == e.kind);
    CHECK(d.force == e.force);
    CHECK(d.target == e.target);
    CHECK(d.current == e.current);
    CHECK(d.progress == e.progress);
    CHECK(d.message == e.message);
    REQUIRE(d.phases.size() == e.phases.size());
    for (size_t i = 0; i < d.phases.size(); ++i) {
      CHECK(d.phases[i].p == e.phases[i].p);
      CHECK(d.phases[i].started_us == e.phases[i].started_us);
      CHECK(d.phases[i].ended_us == e.phases[i].ended_us);
    }
    CHECK(d.resources == e.resources);
    CHECK(d.has_error == e.has_error);
    CHECK(d.error.phase == e.error.phase);
    CHECK(d.error.message == e.error.message);
    CHECK(d.error.code == e.error.code);
    CHECK(d.cancel_requested == e.cancel_requested);
    CHECK(d.activated == e.activated);
    CHECK(d.created_us == e.created_us);
    CHECK(d.finished_us == e.finished_us);
    CHECK(d.queued_seq == e.queued_seq);
  }
  CHECK(a.last_seq == b.last_seq);
  CHECK(a.last_us == b.last_us);
  CHECK(a.events == b.events);
}

void check_same(const log_replay& a, const log_replay& b) {
  REQUIRE(a.projects.size() == b.projects.size());
  for (auto& [name, st] : a.projects) {
    INFO("project " << name);
    REQUIRE(b.projects.count(name) == 1);
    check_same(st, b.projects.at(name));
  }
  REQUIRE(a.ports.size() == b.ports.size());
  for (auto& [port, l] : a.ports) {
    REQUIRE(b.ports.count(port) == 1);
    CHECK(l.port == b.ports.at(port).port);
    CHECK(l.project == b.ports.at(port).project);
    CHECK(l.kind == b.ports.at(port).kind);
  }
}

manifest manifest_of(const std::string& name, int variant) {
  auto m = parse_manifest(json::parse(R"({
    "name": ")" + name + R"(", "source": {"path": "/srv/)" + name + R"("},
    "preview": {"command": ["python3", "app.py"], "health": {"path": "/ping", "interval_ms": 250}},
    "build": {"command": ["make"], "artifacts": ["dist"], "limits": {"memory_mb": 1024, "cpu": 1.5}},
    "production": {"command": ["./dist/server"], "keep": )" + std::to_string(2 + variant) + R"(,
                   "limits": {"memory_mb": 256, "pids": 64}},
    "env": {"NODE_ENV": "production", "V": ")" + std::to_string(variant) + R"("},
    "secrets": {"API_KEY": "s3cret"}, "domains": [")" + name + R"(.example.com"]})"));
  INFO(m.error);
  REQUIRE(m.ok);
  return m.value;
}

// A realistic log: projects created, updated, deployed (completed, failed, rolled back),
// previews started and dying, releases pruned, ports leased and released, one project deleted
// and created again.
void fill(event_log& log, int projects) {
  auto add = [&](const std::string& stream, const std::string& type, const std::string& data) {
    std::vector<event_record> out;
    auto st = log.append({{stream, type, data}}, false, &out);
    INFO(st.message());
    REQUIRE(st.is_ok());
    return out.front().seq;
  };
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < projects; ++i) {
      std::string name = "app" + std::to_string(i);
      auto stream = project_stream(name);
      uint16_t prod = static_cast<uint16_t>(8000 + i), prev = static_cast<uint16_t>(4000 + i);
      if (round == 0) {
        add(stream, ev::project_created, project_created_data(manifest_of(name, 0), prod, prev, 10000 + i, 10000 + i));
        add(ports_stream, ev::port_leased, port_leased_data({prod, name, port_kind::production}));
        add(ports_stream, ev::port_leased, port_leased_data({prev, name, port_kind::preview}));
      } else {
        add(stream, ev::project_updated, project_updated_data(manifest_of(name, round)));
      }
      add(stream, ev::preview_started, json{{"instance", "p" + std::to_string(i)}, {"pid", 100 + i}, {"port", prev}, {"cause", "start"}}.dump());
      if (i % 3 == 0) add(stream, ev::preview_exited, json{{"reason", "exit code 1"}}.dump());
      deployment_job job;
      job.kind = job_kind::deploy;
      job.force = i % 2 == 0;
      auto queued = add(stream, event_type(phase::queued), deployment_queued_data(job));
      auto id = deployment_id(name, queued);
      std::string hash = std::string(12, static_cast<char>('a' + round)) + std::to_string(i);
      for (phase p : {phase::preparing, phase::building, phase::packaging, phase::starting, phase::health_checking,
                      phase::switching, phase::draining}) {
        json res = json::object();
        if (p == phase::packaging) res = {{"hash", hash}, {"bytes", 123456}, {"ratio", 0.25}};
        if (p == phase::starting) res = {{"port", 4100 + i}, {"pid", 900 + i}};
        add(stream, event_type(p), phase_event_data(id, std::string("in ") + to_string(p), res));
        if (p == phase::packaging) add(stream, ev::release_packaged, json{{"hash", hash}, {"deployment", id}}.dump());
        if (p == phase::switching)
          add(stream, ev::release_activated,
              json{{"hash", hash}, {"deployment", id}, {"kind", "deploy"}, {"instance", "r" + hash}, {"pid", 900 + i}, {"port", prod}}.dump());
      }
      if (i % 4 == 1) {  // a failed one
        add(stream, event_type(phase::failed), phase_event_data(id, "done", json::object()));
        auto q2 = add(stream, event_type(phase::queued), deployment_queued_data(job));
        deployment_error err{"building", "make: *** [all] Error 2", "build_failed"};
        add(stream, ev::deployment_cancel_requested, json{{"id", deployment_id(name, q2)}}.dump());
        add(stream, event_type(phase::failed), phase_event_data(deployment_id(name, q2), "build failed", json::object(), &err));
      } else {
        add(stream, event_type(phase::completed), phase_event_data(id, "done", json{{"gap_ms", 0}}));
      }
      add(stream, ev::production_started, json{{"instance", "r" + hash}, {"pid", 900 + i}, {"port", prod}, {"cause", "restart"}}.dump());
      if (i % 5 == 2) add(stream, ev::production_exited, json{{"reason", "oom: over 256 MB"}}.dump());
      if (round == 1 && i % 3 == 1)
        add(stream, ev::release_pruned, json{{"hash", std::string(12, 'a') + std::to_string(i)}, {"reason", "retention"}}.dump());
      if (i % 7 == 3) add(stream, ev::sandbox_assigned, sandbox_assigned_data(20000 + i, 20000 + i));
    }
    if (round == 0) {  // one project goes and comes back under the same name
      add(project_stream("app2"), ev::project_deleted, "{}");
      add(ports_stream, ev::port_released, port_released_data({8002, "app2", port_kind::production}, "deleted"));
      add(project_stream("app2"), ev::project_created, project_created_data(manifest_of("app2", 5), 8802, 4802));
    }
  }
  add("other/stream", "ignored", "{}");  // not folded
}

log_replay full_fold(const event_log& log) {
  log_replay r;
  REQUIRE(log.scan(1, [&](const event_record& e) {
                r.fold(e);
                return true;
              }).is_ok());
  return r;
}

// The folds of the events up to `seq`, and that event's hash.
log_replay fold_until(const event_log& log, uint64_t seq, std::string& hash) {
  log_replay r;
  REQUIRE(log.scan(1, [&](const event_record& e) {
                r.fold(e);
                hash = e.hash;
                return e.seq < seq;
              }).is_ok());
  return r;
}

}  // namespace

TEST_CASE("load_replay with a snapshot equals folding every event", "[replay_snapshot]") {
  test::temp_dir tmp("berth-test-snap");
  auto log = open_log(tmp / "events");
  fill(*log, 24);
  const uint64_t last = log->last_seq();
  REQUIRE(last > 500);
  auto expected = full_fold(*log);
  REQUIRE(expected.projects.size() == 24);
  REQUIRE(expected.projects.at("app1").production.deployments.size() == 4);
  REQUIRE(expected.projects.at("app2").preview_port == 4802);  // created again

  SECTION("no snapshot: every event folded") {
    log_replay got;
    replay_load_stats stats;
    REQUIRE(load_replay(*log, &got, &stats).is_ok());
    CHECK(stats.snapshot_seq == 0);
    CHECK(stats.tail_events == last);
    CHECK(stats.snapshot_refused.empty());
    check_same(expected, got);
  }
  for (uint64_t at : {uint64_t{1}, last * 2 / 5, last * 99 / 100, last}) {
    DYNAMIC_SECTION("a snapshot at " << at << " of " << last << ", then a restart") {
      std::string hash;
      auto upto = fold_until(*log, at, hash);
      REQUIRE(save_replay_snapshot(*log, upto, at, hash).is_ok());
      log.reset();
      log = open_log(tmp / "events");
      log_replay got;
      replay_load_stats stats;
      REQUIRE(load_replay(*log, &got, &stats).is_ok());
      CHECK(stats.snapshot_seq == at);
      CHECK(stats.tail_events == last - at);
      CHECK(stats.snapshot_refused.empty());
      check_same(expected, got);
      // The snapshot is invisible to the reads and to verify.
      auto v = log->verify();
      INFO(v.reason);
      CHECK(v.ok);
      CHECK(v.checked == last);
      CHECK(log->streams("").size() == 26);  // 24 projects, ports, other/stream
      // `berth audit` next to the server reads it too.
      auto ro = open_log(tmp / "events", event_log::mode::read_only);
      log_replay from_ro;
      REQUIRE(load_replay(*ro, &from_ro, &stats).is_ok());
      CHECK(stats.snapshot_seq == at);
      check_same(expected, from_ro);
    }
  }
}

TEST_CASE("a snapshot that fails its check is refused with the reason and everything is folded",
          "[replay_snapshot]") {
  test::temp_dir tmp("berth-test-snap");
  auto log = open_log(tmp / "events");
  fill(*log, 6);
  const uint64_t last = log->last_seq();
  auto expected = full_fold(*log);
  const uint64_t at = last / 2;
  std::string hash;
  auto upto = fold_until(*log, at, hash);

  auto load = [&](replay_load_stats& stats) {
    log_replay got;
    REQUIRE(load_replay(*log, &got, &stats).is_ok());
    check_same(expected, got);
  };
  SECTION("it names another hash than the event at its seq carries") {
    REQUIRE(save_replay_snapshot(*log, upto, at, std::string(64, 'f')).is_ok());
    replay_load_stats stats;
    load(stats);
    CHECK(stats.snapshot_seq == 0);
    CHECK(stats.tail_events == last);
    CHECK(stats.snapshot_refused.find("another hash") != std::string::npos);
  }
  SECTION("it is beyond the log's last event") {
    REQUIRE(save_replay_snapshot(*log, upto, last + 5, hash).is_ok());
    replay_load_stats stats;
    load(stats);
    CHECK(stats.snapshot_seq == 0);
    CHECK(stats.snapshot_refused.find("beyond") != std::string::npos);
  }
  SECTION("it was written in another format (an older berth) or is damaged") {
    REQUIRE(save_replay_snapshot(*log, upto, at, hash).is_ok());
    std::string bytes;
    REQUIRE(log->get_snapshot(at, &bytes).is_ok());
    auto older = bytes;
    older[12] = static_cast<char>(older[12] + 1);  // the format version after the magic
    REQUIRE(log->put_snapshot(at, older, 2).is_ok());
    replay_load_stats stats;
    load(stats);
    CHECK(stats.snapshot_seq == 0);
    CHECK(stats.snapshot_refused.find("format") != std::string::npos);
    REQUIRE(log->put_snapshot(at, bytes.substr(0, bytes.size() - 10), 2).is_ok());
    load(stats);
    CHECK(stats.snapshot_seq == 0);
    CHECK(stats.snapshot_refused.find("decode") != std::string::npos);
  }
  SECTION("a refused newest snapshot falls back to the one before it") {
    REQUIRE(save_replay_snapshot(*log, upto, at, hash).is_ok());
    std::string hash2;
    auto upto2 = fold_until(*log, at + 10, hash2);
    REQUIRE(save_replay_snapshot(*log, upto2, at + 10, std::string(64, 'e')).is_ok());
    CHECK(log->snapshot_seqs() == std::vector<uint64_t>{at + 10, at});
    replay_load_stats stats;
    load(stats);
    CHECK(stats.snapshot_seq == at);
    CHECK(stats.tail_events == last - at);
    CHECK_FALSE(stats.snapshot_refused.empty());
  }
  SECTION("only the newest two are kept") {
    for (uint64_t s : {at - 20, at - 10, at}) {
      std::string h;
      auto r = fold_until(*log, s, h);
      REQUIRE(save_replay_snapshot(*log, r, s, h).is_ok());
    }
    CHECK(log->snapshot_seqs() == std::vector<uint64_t>{at, at - 10});
    replay_load_stats stats;
    load(stats);
    CHECK(stats.snapshot_seq == at);
  }
}
