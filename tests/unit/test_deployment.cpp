// The production vocabulary of messages/deployment.hpp: deployment ids, phases, and the pure
// fold of a project's stream into deployments, releases and the production process. The
// events are built by hand with the payloads actors/production.cpp and
// actors/project_jobs.cpp append, so a drift between what is written and what is read shows.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "messages/deployment.hpp"
#include "messages/manifest.hpp"
#include "http/render.hpp"
#include "messages/instance.hpp"
#include "messages/project_state.hpp"

using namespace berth;
using json = nlohmann::json;

namespace {

constexpr int64_t t_start = 1'763'900'000'000'000;  // 2025-11-23T12:13:20Z

// The process identity (pid, start time, process group) a record of the old shape gave the
// serving instance.
struct process_identity {
  int pid = 0;
  uint64_t start_time = 0;
  int pgid = 0;
};
process_identity identity_of(const instance_ref& r) {
  process_identity p;
  parse_process_instance_id(r.id, &p.pid, &p.start_time, &p.pgid);
  return p;
}

// The stream `project/shop` as the actors append it. Global seqs have gaps (other streams'
// events come between) and every event is a bit later than the one before.
struct shop_stream {
  std::string stream = "project/shop";
  uint64_t seq = 40;
  int64_t ts = t_start;
  production_record prod;
  std::vector<event_record> events;

  const event_record& add(const std::string& type, const std::string& data, uint64_t seq_step = 3,
                          int64_t dt_us = 250'000) {
    event_record e;
    e.seq = seq += seq_step;
    e.stream = stream;
    e.type = type;
    e.ts_us = ts += dt_us;
    e.data = data;
    fold(prod, e);
    events.push_back(e);
    return events.back();
  }
  // project_jobs::enqueue: deployment_queued carries no id; returns the id the fold gives it.
  std::string queue(job_kind kind = job_kind::deploy, bool force = false, const std::string& target = "") {
    auto& e = add(event_type(phase::queued), deployment_queued_data({"", kind, force, target}));
    return "shop." + std::to_string(e.seq);
  }
  const event_record& phase_event(const std::string& id, phase p, const std::string& message,
                                  const json& resources = json::object(),
                                  const deployment_error* err = nullptr) {
    return add(event_type(p), phase_event_data(id, message, resources, err));
  }
  const event_record& packaged(const std::string& hash, const std::string& id) {
    return add(ev::release_packaged, json{{"hash", hash}, {"deployment", id}}.dump());
  }
  // production.cpp: process_json(promoted) + deployment, kind, previous.
  const event_record& activated(const std::string& hash, const std::string& id, job_kind kind,
                                const std::string& previous, int pid, uint16_t port = 8001) {
    return add(ev::release_activated, json{{"hash", hash},
                                           {"pid", pid},
                                           {"start_time", 777000 + pid},
                                           {"pgid", pid},
                                           {"port", port},
                                           {"deployment", id},
                                           {"kind", to_string(kind)},
                                           {"previous", previous}}
                                          .dump());
  }
  const deployment_record& dep(const std::string& id) const {
    auto it = prod.deployments.find(id);
    REQUIRE(it != prod.deployments.end());
    return it->second;
  }
  const release_record& rel(const std::string& hash) const {
    auto it = prod.releases.find(hash);
    REQUIRE(it != prod.releases.end());
    return it->second;
  }

  // A whole successful deploy of `hash` (packaged new) over what is current; returns its id.
  std::string deploy(const std::string& hash, int pid) {
    auto previous = prod.current;
    auto id = queue();
    json res = json::object();
    if (!previous.empty()) res["previous"] = previous;
    phase_event(id, phase::preparing, "snapshotting the source", res);
    phase_event(id, phase::building, "building", res);
    res["build_ms"] = 900;
    phase_event(id, phase::packaging, "packaging the artifacts", res);
    packaged(hash, id);
    res["hash"] = hash;
    phase_event(id, phase::starting, "starting the candidate on a spare port", res);
    res["candidate"] = {{"pid", pid - 1}, {"port", 4005}};
    phase_event(id, phase::health_checking, "checking the candidate's health", res);
    res["candidate_boot_ms"] = 300;
    phase_event(id, phase::switching, "moving the stable port to the new release", res);
    activated(hash, id, job_kind::deploy, previous, pid);
    res.erase("candidate");
    res["pid"] = pid;
    res["port"] = 8001;
    res["gap_ms"] = 12;
    phase_event(id, phase::draining, "stopping the candidate and cleaning up", res);
    phase_event(id, phase::completed, "deployed " + hash + " on port 8001 (switch gap 12 ms)", res);
    return id;
  }
  // A whole rollback to `hash`, a kept release.
  std::string rollback(const std::string& hash, int pid) {
    auto previous = prod.current;
    auto id = queue(job_kind::rollback, false, hash);
    json res{{"hash", hash}, {"previous", previous}};
    phase_event(id, phase::starting, "starting the candidate on a spare port", res);
    phase_event(id, phase::health_checking, "checking the candidate's health", res);
    phase_event(id, phase::switching, "moving the stable port to the new release", res);
    activated(hash, id, job_kind::rollback, previous, pid);
    phase_event(id, phase::draining, "stopping the candidate and cleaning up", res);
    phase_event(id, phase::completed, "rolled back to " + hash + " on port 8001", res);
    return id;
  }
};

std::vector<std::string> span_names(const deployment_record& d) {
  std::vector<std::string> out;
  for (auto& s : d.phases) out.push_back(to_string(s.p));
  return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

const std::vector<phase> deploy_pipeline = {phase::queued,    phase::preparing,       phase::building,
                                            phase::packaging, phase::starting,        phase::health_checking,
                                            phase::switching, phase::draining,        phase::completed};

const std::vector<phase> all_phases = {
    phase::queued,   phase::preparing,       phase::building,  phase::packaging, phase::starting,
    phase::health_checking, phase::switching, phase::draining, phase::completed, phase::unchanged,
    phase::rolling_back, phase::failed,      phase::cancelled};

json history_release(const json& h, const std::string& hash) {
  for (auto& r : h.at("releases"))
    if (r.at("hash") == hash) return r;
  return json();
}

}  // namespace

TEST_CASE("deployment - ids are the project and the seq of the queued event", "[deployment]") {
  CHECK(deployment_id("shop", 42) == "shop.42");
  CHECK(deployment_id("my-app-2", 7) == "my-app-2.7");

  std::string project = "unset";
  uint64_t seq = 0;
  REQUIRE(split_deployment_id("shop.42", project, seq));
  CHECK(project == "shop");
  CHECK(seq == 42);
  REQUIRE(split_deployment_id("my-app-2.1", project, seq));
  CHECK(project == "my-app-2");
  CHECK(seq == 1);
  // Round trip, up to the largest seq it accepts (19 digits).
  for (uint64_t n : {uint64_t{1}, uint64_t{10}, uint64_t{123456789}, uint64_t{9999999999999999999ull}}) {
    INFO(n);
    REQUIRE(split_deployment_id(deployment_id("shop", n), project, seq));
    CHECK(project == "shop");
    CHECK(seq == n);
  }

  for (std::string bad : {"", "shop", ".5", "shop.", "shop.05", "shop.0", "shop.00", "shop.x", "shop.1x",
                          "shop.-1", "shop.+1", "shop. 1", "shop.1 ", "shop..",
                          // 20 digits: refused without throwing, even when it would fit in 64 bits
                          "shop.18446744073709551615", "shop.18446744073709551616", "shop.99999999999999999999",
                          "shop.12345678901234567890123"}) {
    INFO("'" << bad << "'");
    project = "unset";
    seq = 0;
    bool ok = true;
    CHECK_NOTHROW(ok = split_deployment_id(bad, project, seq));
    CHECK_FALSE(ok);
  }

  // Only the last '.' separates the seq: "shop.1.2" splits into project "shop.1" and seq 2, and
  // it is the caller's check_name that refuses it ('.' never occurs in a project name).
  REQUIRE(split_deployment_id("shop.1.2", project, seq));
  CHECK(project == "shop.1");
  CHECK(seq == 2);
  CHECK_FALSE(check_name(project).valid);
}

TEST_CASE("deployment - phases have names event types progress and ends", "[deployment]") {
  for (auto p : all_phases) {
    INFO(to_string(p));
    phase back = phase::failed;
    REQUIRE(parse_phase(to_string(p), back));
    CHECK(back == p);
    CHECK(event_type(p) == std::string("deployment_") + to_string(p));
    phase from_type = phase::failed;
    REQUIRE(phase_of_event(event_type(p), from_type));
    CHECK(from_type == p);
    CHECK(progress_of(p) >= 0);
    CHECK(progress_of(p) <= 100);
  }
  CHECK(event_type(phase::health_checking) == "deployment_health_checking");
  CHECK(event_type(phase::rolling_back) == "deployment_rolling_back");
  CHECK(std::string(to_string(phase::queued)) == "queued");

  phase p = phase::queued;
  CHECK_FALSE(parse_phase("bogus", p));
  CHECK_FALSE(parse_phase("", p));
  CHECK_FALSE(parse_phase("Completed", p));
  // Not phase events, though some share the prefix.
  for (auto* type : {ev::deployment_cancel_requested, ev::release_packaged, ev::release_activated,
                     ev::production_started, "deployment_", "deployment_bogus", "completed",
                     "xdeployment_completed", "project_created"}) {
    INFO(type);
    CHECK_FALSE(phase_of_event(type, p));
  }

  // The ends.
  for (auto q : all_phases) {
    INFO(to_string(q));
    bool end = q == phase::completed || q == phase::unchanged || q == phase::failed || q == phase::cancelled;
    CHECK(is_terminal(q) == end);
  }
  // Progress only grows along the pipeline, from 0 when queued to 100 when done.
  CHECK(progress_of(phase::queued) == 0);
  for (size_t i = 1; i < deploy_pipeline.size(); ++i) {
    INFO(to_string(deploy_pipeline[i - 1]) << " then " << to_string(deploy_pipeline[i]));
    CHECK(progress_of(deploy_pipeline[i - 1]) < progress_of(deploy_pipeline[i]));
  }
  for (auto q : {phase::completed, phase::unchanged, phase::failed, phase::cancelled}) CHECK(progress_of(q) == 100);
  CHECK(progress_of(phase::rolling_back) < 100);
  CHECK(std::string(to_string(job_kind::deploy)) == "deploy");
  CHECK(std::string(to_string(job_kind::rollback)) == "rollback");
}

TEST_CASE("deployment - event payloads carry what the fold reads", "[deployment]") {
  auto q = json::parse(deployment_queued_data({"shop.9", job_kind::deploy, true, ""}));
  CHECK_FALSE(q.contains("id"));  // the fold derives it from the seq
  CHECK(q.at("kind") == "deploy");
  CHECK(q.at("force") == true);
  CHECK_FALSE(q.contains("target"));
  auto r = json::parse(deployment_queued_data({"", job_kind::rollback, false, "0123456789ab"}));
  CHECK(r.at("kind") == "rollback");
  CHECK(r.at("force") == false);
  CHECK(r.at("target") == "0123456789ab");

  auto plain = json::parse(phase_event_data("shop.9", "building"));
  CHECK(plain == json{{"id", "shop.9"}, {"message", "building"}});
  auto with = json::parse(phase_event_data("shop.9", "starting", {{"hash", "0123456789ab"}, {"build_ms", 5}}));
  CHECK(with.at("resources") == json{{"hash", "0123456789ab"}, {"build_ms", 5}});
  CHECK_FALSE(with.contains("error"));
  deployment_error err{"building", "the build exited with code 2", "build_failed"};
  auto failed = json::parse(phase_event_data("shop.9", err.message, json::object(), &err));
  CHECK(failed.at("error") ==
        json{{"phase", "building"}, {"message", "the build exited with code 2"}, {"code", "build_failed"}});
  CHECK_FALSE(failed.contains("resources"));
}

TEST_CASE("deployment - a full deploy folds into its phases with times and progress", "[deployment]") {
  shop_stream s;
  auto& qe = s.add(event_type(phase::queued), deployment_queued_data({"", job_kind::deploy, false, ""}));
  auto id = "shop." + std::to_string(qe.seq);
  auto queued_ts = qe.ts_us;
  {
    auto& d = s.dep(id);
    CHECK(d.id == id);
    CHECK(d.project == "shop");
    CHECK(d.queued_seq == qe.seq);
    CHECK(d.kind == job_kind::deploy);
    CHECK_FALSE(d.force);
    CHECK(d.status() == "queued");
    CHECK(d.current == phase::queued);
    CHECK(d.progress == 0);
    CHECK(d.created_us == queued_ts);
    CHECK(d.finished_us == 0);
    REQUIRE(d.phases.size() == 1);
    CHECK(d.phases[0].started_us == queued_ts);
    CHECK(d.phases[0].ended_us == 0);
    auto j = to_json(d);
    CHECK(j.at("status") == "queued");
    CHECK(j.at("finished").is_null());
    CHECK(j.at("duration_s").is_null());
    CHECK(j.at("phases").at(0).at("ended").is_null());
  }
  CHECK(s.prod.order == std::vector<std::string>{id});
  CHECK(queued_ids(s.prod) == std::vector<std::string>{id});

  // Phase by phase, as production:<name> appends them (release events in between).
  std::vector<int64_t> phase_ts{queued_ts};
  int last_progress = 0;
  auto step = [&](phase p, const std::string& message, const json& res) {
    phase_ts.push_back(s.phase_event(id, p, message, res).ts_us);
    auto& d = s.dep(id);
    INFO(to_string(p));
    CHECK(d.current == p);
    CHECK(d.message == message);
    CHECK(d.progress == progress_of(p));
    CHECK(d.progress > last_progress);
    last_progress = d.progress;
    CHECK(d.status() == (is_terminal(p) ? std::string("completed") : std::string("running")));
    CHECK(queued_ids(s.prod).empty());
  };
  step(phase::preparing, "snapshotting the source", json::object());
  step(phase::building, "building", json::object());
  step(phase::packaging, "packaging the artifacts", {{"build_ms", 900}});
  auto packaged_ts = s.packaged("aaaaaaaaaaaa", id).ts_us;
  step(phase::starting, "starting the candidate on a spare port", {{"hash", "aaaaaaaaaaaa"}});
  step(phase::health_checking, "checking the candidate's health", {{"candidate", {{"pid", 4100}, {"port", 4005}}}});
  {
    // Mid-way: the running phase has no end yet, the deployment no finish.
    auto& d = s.dep(id);
    CHECK(d.phases.back().p == phase::health_checking);
    CHECK(d.phases.back().ended_us == 0);
    CHECK(d.finished_us == 0);
    auto j = to_json(d);
    CHECK(j.at("status") == "running");
    CHECK(j.at("phase") == "health_checking");
    CHECK(j.at("phases").back().at("ended").is_null());
    CHECK(j.at("phases").front().at("ended") == iso8601(phase_ts[1]));
    CHECK(j.at("finished").is_null());
    CHECK(j.at("error").is_null());
    CHECK(s.prod.current.empty());  // nothing serves until the switch
    CHECK(s.prod.status == "none");
  }
  step(phase::switching, "moving the stable port to the new release", {{"candidate_boot_ms", 300}});
  auto activated_ts = s.activated("aaaaaaaaaaaa", id, job_kind::deploy, "", 4101).ts_us;
  step(phase::draining, "stopping the candidate and cleaning up", {{"pid", 4101}, {"port", 8001}, {"gap_ms", 12}});
  step(phase::completed, "deployed aaaaaaaaaaaa on port 8001 (switch gap 12 ms)", json::object());

  auto& d = s.dep(id);
  CHECK(d.status() == "completed");
  CHECK(d.progress == 100);
  CHECK_FALSE(d.has_error);
  CHECK_FALSE(d.cancel_requested);
  CHECK(span_names(d) == std::vector<std::string>{"queued", "preparing", "building", "packaging", "starting",
                                                  "health_checking", "switching", "draining", "completed"});
  REQUIRE(d.phases.size() == phase_ts.size());
  // Each phase starts with its event and ends with the next phase's (release events do not end one).
  for (size_t i = 0; i + 1 < d.phases.size(); ++i) {
    INFO(to_string(d.phases[i].p));
    CHECK(d.phases[i].started_us == phase_ts[i]);
    CHECK(d.phases[i].ended_us == phase_ts[i + 1]);
  }
  CHECK(d.phases.back().started_us == phase_ts.back());
  CHECK(d.phases.back().ended_us == phase_ts.back());
  CHECK(d.created_us == queued_ts);
  CHECK(d.finished_us == phase_ts.back());

  auto j = to_json(d);
  CHECK(j.at("id") == id);
  CHECK(j.at("project") == "shop");
  CHECK(j.at("kind") == "deploy");
  CHECK(j.at("force") == false);
  CHECK(j.at("status") == "completed");
  CHECK(j.at("phase") == "completed");
  CHECK(j.at("progress") == 100);
  CHECK(j.at("message") == "deployed aaaaaaaaaaaa on port 8001 (switch gap 12 ms)");
  CHECK(j.at("error").is_null());
  CHECK(j.at("cancel_requested") == false);
  CHECK(j.at("created") == iso8601(queued_ts));
  CHECK(j.at("finished") == iso8601(phase_ts.back()));
  CHECK(j.at("duration_s").get<double>() == Approx((phase_ts.back() - queued_ts) / 1e6));
  CHECK_FALSE(j.contains("target"));
  REQUIRE(j.at("phases").size() == phase_ts.size());
  for (size_t i = 0; i < phase_ts.size(); ++i) {
    CHECK(j["phases"][i].at("phase") == to_string(deploy_pipeline[i]));
    CHECK(j["phases"][i].at("started") == iso8601(phase_ts[i]));
  }
  CHECK(j["phases"].back().at("ended") == iso8601(phase_ts.back()));

  // What production serves now.
  CHECK(s.prod.current == "aaaaaaaaaaaa");
  CHECK(s.prod.status == "running");
  CHECK(s.prod.process.pid == 4101);
  CHECK(identity_of(s.prod.process).pgid == 4101);
  CHECK(identity_of(s.prod.process).start_time == 777000 + 4101);
  CHECK(s.prod.process.port == 8001);
  auto& r = s.rel("aaaaaaaaaaaa");
  CHECK(r.hash == "aaaaaaaaaaaa");
  CHECK(r.deployment == id);
  CHECK(r.created_us == packaged_ts);
  CHECK(r.deployed_us == activated_ts);
  CHECK(r.last_used_us == activated_ts);
  CHECK(r.activations == 1);
  CHECK(r.rolled_back_to_us == 0);
  CHECK(r.rolled_back_from_us == 0);
}

TEST_CASE("deployment - resources learnt in each phase are merged", "[deployment]") {
  shop_stream s;
  s.deploy("aaaaaaaaaaaa", 4101);
  auto id = s.queue();
  s.phase_event(id, phase::preparing, "snapshotting the source", {{"previous", "aaaaaaaaaaaa"}});
  s.phase_event(id, phase::building, "building");  // no resources: keeps what was learnt
  CHECK(s.dep(id).resources == json{{"previous", "aaaaaaaaaaaa"}});
  s.phase_event(id, phase::packaging, "packaging the artifacts", {{"build_ms", 900}});
  s.packaged("bbbbbbbbbbbb", id);
  s.phase_event(id, phase::starting, "starting", {{"hash", "bbbbbbbbbbbb"}});
  s.phase_event(id, phase::health_checking, "checking",
                {{"candidate", {{"pid", 4200}, {"port", 4005}}}, {"build_ms", 950}});
  auto& d = s.dep(id);
  CHECK(d.resources == json{{"previous", "aaaaaaaaaaaa"},
                            {"build_ms", 950},  // a later value wins
                            {"hash", "bbbbbbbbbbbb"},
                            {"candidate", {{"pid", 4200}, {"port", 4005}}}});
  // Interrupted (project_jobs: resume / end_deployment): a failed event without resources.
  deployment_error err{"health_checking", "berth stopped while the deployment was running", "interrupted"};
  s.phase_event(id, phase::failed, err.message, json::object(), &err);
  CHECK(s.dep(id).resources.at("hash") == "bbbbbbbbbbbb");
  CHECK(s.dep(id).resources.at("previous") == "aaaaaaaaaaaa");
  CHECK(to_json(s.dep(id)).at("resources").at("candidate").at("port") == 4005);
  CHECK(s.dep(id).error.code == "interrupted");
  // The first deployment's resources are its own.
  CHECK_FALSE(s.dep(s.prod.order.front()).resources.contains("previous"));
  CHECK(s.dep(s.prod.order.front()).resources.at("hash") == "aaaaaaaaaaaa");
}

TEST_CASE("deployment - a failed deploy records its error and leaves production as it was", "[deployment]") {
  shop_stream s;
  auto v1 = s.deploy("aaaaaaaaaaaa", 4101);
  auto id = s.queue();
  s.phase_event(id, phase::preparing, "snapshotting the source", {{"previous", "aaaaaaaaaaaa"}});
  s.phase_event(id, phase::building, "building");
  s.phase_event(id, phase::packaging, "packaging the artifacts", {{"build_ms", 900}});
  s.packaged("bbbbbbbbbbbb", id);
  s.phase_event(id, phase::starting, "starting", {{"hash", "bbbbbbbbbbbb"}});
  auto hc_ts = s.phase_event(id, phase::health_checking, "checking", {{"candidate", {{"pid", 4200}, {"port", 4005}}}}).ts_us;
  CHECK(s.prod.releases.count("bbbbbbbbbbbb") == 1);

  // production.cpp roll_back: rolling_back, then release_removed and the end in one batch.
  auto rb_ts = s.phase_event(id, phase::rolling_back, "rolling back: the candidate exited with code 1").ts_us;
  CHECK(s.dep(id).status() == "running");
  CHECK(s.dep(id).current == phase::rolling_back);
  CHECK(s.dep(id).progress == progress_of(phase::rolling_back));
  CHECK_FALSE(s.dep(id).has_error);
  s.add(ev::release_removed, json{{"hash", "bbbbbbbbbbbb"}, {"reason", "its deployment " + id + " failed"}}.dump());
  deployment_error err{"health_checking", "the candidate exited with code 1 before passing its health check",
                       "health_check_failed"};
  auto failed_ts = s.phase_event(id, phase::failed, err.message,
                                 {{"hash", "bbbbbbbbbbbb"}, {"previous", "aaaaaaaaaaaa"}, {"build_ms", 900}}, &err)
                       .ts_us;

  auto& d = s.dep(id);
  CHECK(d.status() == "failed");
  CHECK(d.current == phase::failed);
  CHECK(d.progress == 100);
  CHECK(d.message == err.message);
  REQUIRE(d.has_error);
  CHECK(d.error.phase == "health_checking");
  CHECK(d.error.message == err.message);
  CHECK(d.error.code == "health_check_failed");
  CHECK(d.finished_us == failed_ts);
  CHECK(span_names(d) == std::vector<std::string>{"queued", "preparing", "building", "packaging", "starting",
                                                  "health_checking", "rolling_back", "failed"});
  CHECK(d.phases[5].started_us == hc_ts);
  CHECK(d.phases[5].ended_us == rb_ts);
  CHECK(d.phases[6].ended_us == failed_ts);
  CHECK(d.phases[7].started_us == failed_ts);
  CHECK(d.phases[7].ended_us == failed_ts);
  auto j = to_json(d);
  CHECK(j.at("status") == "failed");
  CHECK(j.at("error") == json{{"phase", "health_checking"},
                              {"message", "the candidate exited with code 1 before passing its health check"},
                              {"code", "health_check_failed"}});
  CHECK(j.at("resources").at("hash") == "bbbbbbbbbbbb");
  CHECK(j.at("finished") == iso8601(failed_ts));

  // Production still serves v1 and the removed release is gone from the history.
  CHECK(s.prod.current == "aaaaaaaaaaaa");
  CHECK(s.prod.status == "running");
  CHECK(s.prod.process.pid == 4101);
  CHECK(s.prod.releases.count("bbbbbbbbbbbb") == 0);
  CHECK(s.prod.releases.size() == 1);
  CHECK(s.rel("aaaaaaaaaaaa").activations == 1);
  CHECK(s.rel("aaaaaaaaaaaa").deployment == v1);
  CHECK(history_json(s.prod).at("releases").size() == 1);
  CHECK(previous_release(s.prod).empty());
  CHECK(queued_ids(s.prod).empty());
  CHECK(s.dep(v1).status() == "completed");  // untouched
}

TEST_CASE("deployment - the old release coming back or not after a failed switch", "[deployment]") {
  shop_stream s;
  s.deploy("aaaaaaaaaaaa", 4101);
  auto id = s.queue();
  s.phase_event(id, phase::switching, "moving the stable port to the new release", {{"hash", "bbbbbbbbbbbb"}});
  s.phase_event(id, phase::rolling_back, "rolling back: the new release did not come up");
  // The old release was started again on the stable port: production_started with its process.
  s.add(ev::production_started,
        json{{"hash", "aaaaaaaaaaaa"}, {"pid", 4300}, {"start_time", 5}, {"pgid", 4300}, {"port", 8001}}.dump());
  deployment_error err{"switching", "the new release did not come up", "switch_failed"};
  s.phase_event(id, phase::failed, err.message, json::object(), &err);
  CHECK(s.prod.status == "running");
  CHECK(s.prod.current == "aaaaaaaaaaaa");
  CHECK(s.prod.process.pid == 4300);
  CHECK(identity_of(s.prod.process).start_time == 5);

  // Another one where it did not: production exited, with why.
  auto id2 = s.queue();
  s.phase_event(id2, phase::switching, "moving the stable port to the new release");
  s.phase_event(id2, phase::rolling_back, "rolling back");
  s.add(ev::production_exited, json{{"reason", "the previous release did not come back"}}.dump());
  s.phase_event(id2, phase::failed, err.message, json::object(), &err);
  CHECK(s.prod.status == "exited");
  CHECK(s.prod.reason == "the previous release did not come back");
  CHECK(s.prod.process.pid == 0);
  CHECK(s.prod.current == "aaaaaaaaaaaa");
}

TEST_CASE("deployment - a cancel request marks a running deployment until it ends", "[deployment]") {
  shop_stream s;
  auto id = s.queue();
  s.phase_event(id, phase::preparing, "snapshotting the source");
  auto building_ts = s.phase_event(id, phase::building, "building").ts_us;
  s.add(ev::deployment_cancel_requested, json{{"id", id}}.dump());
  {
    auto& d = s.dep(id);
    CHECK(d.cancel_requested);
    CHECK(d.status() == "running");  // it ends at the next phase boundary, not now
    CHECK(d.current == phase::building);
    CHECK(d.message == "building");
    CHECK(d.phases.size() == 3);
    CHECK(d.phases.back().ended_us == 0);
    CHECK_FALSE(d.has_error);
    CHECK(to_json(d).at("cancel_requested") == true);
  }
  // A request for an id the stream does not know changes nothing.
  s.add(ev::deployment_cancel_requested, json{{"id", "shop.999999"}}.dump());
  s.add(ev::deployment_cancel_requested, "{}");
  CHECK(s.prod.deployments.size() == 1);
  CHECK(s.prod.order.size() == 1);

  auto rb_ts = s.phase_event(id, phase::rolling_back, "rolling back: cancelled by request").ts_us;
  deployment_error err{"building", "cancelled by request", "cancelled"};
  auto end_ts = s.phase_event(id, phase::cancelled, err.message, json::object(), &err).ts_us;
  auto& d = s.dep(id);
  CHECK(d.status() == "cancelled");
  CHECK(d.current == phase::cancelled);
  CHECK(d.cancel_requested);
  REQUIRE(d.has_error);
  CHECK(d.error.code == "cancelled");
  CHECK(d.error.phase == "building");
  CHECK(d.finished_us == end_ts);
  CHECK(d.phases[2].started_us == building_ts);
  CHECK(d.phases[2].ended_us == rb_ts);
  CHECK(span_names(d) == std::vector<std::string>{"queued", "preparing", "building", "rolling_back", "cancelled"});
  auto j = to_json(d);
  CHECK(j.at("status") == "cancelled");
  CHECK(j.at("error").at("code") == "cancelled");
  CHECK(j.at("cancel_requested") == true);
}

TEST_CASE("deployment - a deploy cancelled while queued ends at once", "[deployment]") {
  shop_stream s;
  auto a = s.queue();
  auto b = s.queue(job_kind::deploy, true);
  CHECK(s.dep(b).force);
  s.phase_event(a, phase::preparing, "snapshotting the source");
  CHECK(queued_ids(s.prod) == std::vector<std::string>{b});

  // project_jobs::cancel of a queued one: a cancelled event, no cancel_requested.
  deployment_error err{"queued", "cancelled by request before it started", "cancelled"};
  auto end_ts = s.phase_event(b, phase::cancelled, err.message, json::object(), &err).ts_us;
  auto& d = s.dep(b);
  CHECK(d.status() == "cancelled");
  CHECK_FALSE(d.cancel_requested);
  REQUIRE(d.has_error);
  CHECK(d.error.phase == "queued");
  CHECK(d.error.code == "cancelled");
  CHECK(d.progress == 100);
  CHECK(d.finished_us == end_ts);
  CHECK(span_names(d) == std::vector<std::string>{"queued", "cancelled"});
  CHECK(d.phases[0].ended_us == end_ts);
  CHECK(queued_ids(s.prod).empty());
  CHECK(s.dep(a).status() == "running");  // the running one is not affected
  CHECK(s.dep(a).current == phase::preparing);
  auto c = s.queue();
  CHECK(queued_ids(s.prod) == std::vector<std::string>{c});
  CHECK(s.prod.order == std::vector<std::string>{a, b, c});
}

TEST_CASE("deployment - queued_ids lists the waiting deployments in arrival order", "[deployment]") {
  shop_stream s;
  s.seq = 5;  // seqs 8, 11, 14, 17: "shop.11" sorts before "shop.8" as a string
  auto a = s.queue();
  auto b = s.queue();
  auto c = s.queue(job_kind::deploy, true);
  auto d = s.queue();
  REQUIRE(a == "shop.8");
  REQUIRE(b == "shop.11");
  CHECK(s.dep(a).queued_seq == 8);
  CHECK(queued_ids(s.prod) == std::vector<std::string>{a, b, c, d});
  CHECK(s.prod.order == std::vector<std::string>{a, b, c, d});

  s.phase_event(a, phase::preparing, "snapshotting the source");
  CHECK(queued_ids(s.prod) == std::vector<std::string>{b, c, d});
  deployment_error err{"queued", "cancelled by request before it started", "cancelled"};
  s.phase_event(c, phase::cancelled, err.message, json::object(), &err);
  CHECK(queued_ids(s.prod) == std::vector<std::string>{b, d});
  s.phase_event(a, phase::unchanged, "release aaaaaaaaaaaa is already current; nothing was changed");
  CHECK(s.dep(a).status() == "unchanged");
  CHECK(s.dep(a).progress == 100);
  CHECK_FALSE(s.dep(a).has_error);
  s.phase_event(b, phase::preparing, "snapshotting the source");
  CHECK(queued_ids(s.prod) == std::vector<std::string>{d});
  CHECK(s.prod.order == std::vector<std::string>{a, b, c, d});
}

TEST_CASE("deployment - releases record deploys and rollbacks", "[deployment]") {
  shop_stream s;
  auto va = s.deploy("aaaaaaaaaaaa", 4101);
  auto a_deployed = s.rel("aaaaaaaaaaaa").deployed_us;
  auto a_created = s.rel("aaaaaaaaaaaa").created_us;
  auto vb = s.deploy("bbbbbbbbbbbb", 4102);
  CHECK(s.prod.current == "bbbbbbbbbbbb");
  CHECK(s.dep(vb).resources.at("previous") == "aaaaaaaaaaaa");
  // Replaced by a deploy, not a rollback: no rolled_back_from mark.
  CHECK(s.rel("aaaaaaaaaaaa").rolled_back_from_us == 0);
  CHECK(s.rel("bbbbbbbbbbbb").deployed_us > a_deployed);

  auto rb = s.queue(job_kind::rollback, false, "aaaaaaaaaaaa");
  CHECK(s.dep(rb).kind == job_kind::rollback);
  CHECK(s.dep(rb).target == "aaaaaaaaaaaa");
  CHECK(to_json(s.dep(rb)).at("kind") == "rollback");
  CHECK(to_json(s.dep(rb)).at("target") == "aaaaaaaaaaaa");
  s.phase_event(rb, phase::starting, "starting", {{"hash", "aaaaaaaaaaaa"}, {"previous", "bbbbbbbbbbbb"}});
  s.phase_event(rb, phase::health_checking, "checking");
  s.phase_event(rb, phase::switching, "switching");
  auto act_ts = s.activated("aaaaaaaaaaaa", rb, job_kind::rollback, "bbbbbbbbbbbb", 4103).ts_us;
  s.phase_event(rb, phase::draining, "draining");
  s.phase_event(rb, phase::completed, "rolled back to aaaaaaaaaaaa on port 8001");
  CHECK(span_names(s.dep(rb)) ==
        std::vector<std::string>{"queued", "starting", "health_checking", "switching", "draining", "completed"});
  CHECK(s.dep(rb).status() == "completed");

  CHECK(s.prod.current == "aaaaaaaaaaaa");
  CHECK(s.prod.status == "running");
  CHECK(s.prod.process.pid == 4103);
  auto& a = s.rel("aaaaaaaaaaaa");
  CHECK(a.rolled_back_to_us == act_ts);
  CHECK(a.deployed_us == a_deployed);     // a rollback is not a deploy
  CHECK(a.created_us == a_created);
  CHECK(a.deployment == va);              // still the deployment that packaged it
  CHECK(a.last_used_us == act_ts);
  CHECK(a.activations == 2);
  CHECK(a.rolled_back_from_us == 0);
  auto& b = s.rel("bbbbbbbbbbbb");
  CHECK(b.rolled_back_from_us == act_ts);
  CHECK(b.rolled_back_to_us == 0);
  CHECK(b.activations == 1);
  CHECK(b.deployment == vb);

  auto ja = to_json(a, true, true);
  CHECK(ja.at("hash") == "aaaaaaaaaaaa");
  CHECK(ja.at("current") == true);
  CHECK(ja.at("active") == true);
  CHECK(ja.at("deployment") == va);
  CHECK(ja.at("created") == iso8601(a_created));
  CHECK(ja.at("deployed_at") == iso8601(a_deployed));
  CHECK(ja.at("rolled_back_to_at") == iso8601(act_ts));
  CHECK(ja.at("rolled_back_from_at").is_null());
  CHECK(ja.at("activations") == 2);
  auto jb = to_json(b, false, false);
  CHECK(jb.at("rolled_back_from_at") == iso8601(act_ts));
  CHECK(jb.at("rolled_back_to_at").is_null());

  // A deploy that brings a kept release back (same hash, nothing packaged) counts as a deploy.
  auto again = s.queue(job_kind::deploy, true);
  s.phase_event(again, phase::switching, "switching", {{"hash", "bbbbbbbbbbbb"}});
  auto again_ts = s.activated("bbbbbbbbbbbb", again, job_kind::deploy, "aaaaaaaaaaaa", 4104).ts_us;
  CHECK(s.rel("bbbbbbbbbbbb").deployed_us == again_ts);
  CHECK(s.rel("bbbbbbbbbbbb").activations == 2);
  CHECK(s.rel("bbbbbbbbbbbb").deployment == vb);
  CHECK(s.rel("aaaaaaaaaaaa").rolled_back_from_us == 0);
}

TEST_CASE("deployment - pruned and removed releases leave the record", "[deployment]") {
  shop_stream s;
  s.deploy("aaaaaaaaaaaa", 4101);
  s.deploy("bbbbbbbbbbbb", 4102);
  s.deploy("cccccccccccc", 4103);
  REQUIRE(s.prod.releases.size() == 3);
  s.add(ev::release_pruned, json{{"hash", "aaaaaaaaaaaa"}, {"reason", "retention keeps 2"}}.dump());
  CHECK(s.prod.releases.count("aaaaaaaaaaaa") == 0);
  CHECK(s.prod.releases.size() == 2);
  s.add(ev::release_removed, json{{"hash", "bbbbbbbbbbbb"}, {"reason", "its deployment shop.1 failed"}}.dump());
  CHECK(s.prod.releases.count("bbbbbbbbbbbb") == 0);
  s.add(ev::release_pruned, json{{"hash", "dddddddddddd"}, {"reason", "retention keeps 2"}}.dump());
  CHECK(s.prod.releases.size() == 1);
  CHECK(s.prod.current == "cccccccccccc");
  CHECK(s.prod.status == "running");
  auto h = history_json(s.prod);
  REQUIRE(h.at("releases").size() == 1);
  CHECK(h["releases"][0].at("hash") == "cccccccccccc");
  CHECK(s.prod.deployments.size() == 3);  // the deployments stay
}

TEST_CASE("deployment - production stopped started and exited set its status", "[deployment]") {
  shop_stream s;
  CHECK(s.prod.status == "none");
  CHECK(s.prod.current.empty());
  s.deploy("aaaaaaaaaaaa", 4101);
  CHECK(s.prod.status == "running");
  CHECK(s.prod.process.pid == 4101);

  s.add(ev::production_stopped, json{{"reason", "stopped by request"}}.dump());
  CHECK(s.prod.status == "stopped");
  CHECK(s.prod.reason == "stopped by request");
  CHECK(s.prod.process.pid == 0);
  CHECK(s.prod.process.port == 0);
  CHECK(s.prod.current == "aaaaaaaaaaaa");  // stopping keeps the release
  CHECK(s.prod.releases.size() == 1);

  s.add(ev::production_started,
        json{{"hash", "aaaaaaaaaaaa"}, {"pid", 5000}, {"start_time", 99}, {"pgid", 5000}, {"port", 8001}}.dump());
  CHECK(s.prod.status == "running");
  CHECK(s.prod.reason.empty());
  CHECK(s.prod.process.pid == 5000);
  CHECK(identity_of(s.prod.process).start_time == 99);
  CHECK(s.prod.process.port == 8001);
  CHECK(s.prod.current == "aaaaaaaaaaaa");
  CHECK(s.rel("aaaaaaaaaaaa").activations == 1);  // a restart is not an activation

  s.add(ev::production_exited, json{{"reason", "the release exited with code 1"}}.dump());
  CHECK(s.prod.status == "exited");
  CHECK(s.prod.reason == "the release exited with code 1");
  CHECK(s.prod.process.pid == 0);
  CHECK(s.prod.current == "aaaaaaaaaaaa");

  // A later deploy serves again and clears the reason.
  s.deploy("bbbbbbbbbbbb", 4102);
  CHECK(s.prod.status == "running");
  CHECK(s.prod.reason.empty());
  CHECK(s.prod.process.pid == 4102);
}

TEST_CASE("deployment - history marks the current release and whether it serves", "[deployment]") {
  shop_stream s;
  auto h0 = history_json(s.prod);
  CHECK(h0.at("current").is_null());
  CHECK(h0.at("status") == "none");
  CHECK(h0.at("releases") == json::array());

  auto va = s.deploy("bbbbbbbbbbbb", 4101);  // created first, though its hash sorts last
  s.deploy("aaaaaaaaaaaa", 4102);
  s.rollback("bbbbbbbbbbbb", 4103);  // the older one is current again
  auto h = history_json(s.prod);
  CHECK(h.at("current") == "bbbbbbbbbbbb");
  CHECK(h.at("status") == "running");
  REQUIRE(h.at("releases").size() == 2);
  CHECK(h["releases"][0].at("hash") == "aaaaaaaaaaaa");  // newest created first
  CHECK(h["releases"][1].at("hash") == "bbbbbbbbbbbb");
  auto cur = history_release(h, "bbbbbbbbbbbb"), other = history_release(h, "aaaaaaaaaaaa");
  CHECK(cur.at("current") == true);
  CHECK(cur.at("active") == true);
  CHECK(cur.at("deployment") == va);
  CHECK(cur.at("activations") == 2);
  CHECK(other.at("current") == false);
  CHECK(other.at("active") == false);
  CHECK(other.at("rolled_back_from_at").is_string());
  CHECK(other.at("rolled_back_to_at").is_null());

  // Stopped: still current (production/current points at it) but not serving.
  s.add(ev::production_stopped, json{{"reason", "stopped by request"}}.dump());
  h = history_json(s.prod);
  CHECK(h.at("status") == "stopped");
  CHECK(h.at("current") == "bbbbbbbbbbbb");
  cur = history_release(h, "bbbbbbbbbbbb");
  CHECK(cur.at("current") == true);
  CHECK(cur.at("active") == false);
  CHECK(history_release(h, "aaaaaaaaaaaa").at("active") == false);

  s.add(ev::production_started,
        json{{"hash", "bbbbbbbbbbbb"}, {"pid", 5000}, {"start_time", 1}, {"pgid", 5000}, {"port", 8001}}.dump());
  CHECK(history_release(history_json(s.prod), "bbbbbbbbbbbb").at("active") == true);
  s.add(ev::production_exited, json{{"reason", "the release was killed by signal 9"}}.dump());
  h = history_json(s.prod);
  CHECK(h.at("status") == "exited");
  cur = history_release(h, "bbbbbbbbbbbb");
  CHECK(cur.at("current") == true);
  CHECK(cur.at("active") == false);

  // A release that was never activated (a deploy in progress): no deployed_at, not current.
  s.packaged("cccccccccccc", "shop.999");
  h = history_json(s.prod);
  REQUIRE(h.at("releases").size() == 3);
  CHECK(h["releases"][0].at("hash") == "cccccccccccc");
  auto fresh = h["releases"][0];
  CHECK(fresh.at("deployment") == "shop.999");
  CHECK(fresh.at("deployed_at").is_null());
  CHECK(fresh.at("activations") == 0);
  CHECK(fresh.at("current") == false);
  CHECK(fresh.at("active") == false);
  CHECK(fresh.at("created").is_string());
}

TEST_CASE("deployment - releases_to_prune keeps the newest by last use", "[deployment]") {
  shop_stream s;
  s.deploy("aaaaaaaaaaaa", 4101);
  s.deploy("bbbbbbbbbbbb", 4102);
  s.deploy("cccccccccccc", 4103);
  s.deploy("dddddddddddd", 4104);
  s.rollback("aaaaaaaaaaaa", 4105);  // the oldest created is the most recently used now
  REQUIRE(s.prod.current == "aaaaaaaaaaaa");
  // By last use: a (current), d, c, b.
  CHECK(sorted(releases_to_prune(s.prod, 2, {})) == std::vector<std::string>{"bbbbbbbbbbbb", "cccccccccccc"});
  CHECK(sorted(releases_to_prune(s.prod, 3, {})) == std::vector<std::string>{"bbbbbbbbbbbb"});
  CHECK(sorted(releases_to_prune(s.prod, 1, {})) ==
        std::vector<std::string>{"bbbbbbbbbbbb", "cccccccccccc", "dddddddddddd"});
  CHECK(releases_to_prune(s.prod, 4, {}).empty());
  CHECK(releases_to_prune(s.prod, 100, {}).empty());
  // Never one in use, however old.
  CHECK(sorted(releases_to_prune(s.prod, 1, {"bbbbbbbbbbbb"})) ==
        std::vector<std::string>{"cccccccccccc", "dddddddddddd"});
  CHECK(sorted(releases_to_prune(s.prod, 2, {"cccccccccccc", "bbbbbbbbbbbb"})).empty());

  // Never the current one, even when it is the least recently used.
  production_record p;
  p.current = "111111111111";
  for (auto [hash, used] : std::vector<std::pair<std::string, int64_t>>{
           {"111111111111", 10}, {"222222222222", 20}, {"333333333333", 30}, {"444444444444", 40}}) {
    auto& r = p.releases[hash];
    r.hash = hash;
    r.created_us = used;
    r.last_used_us = used;
  }
  CHECK(sorted(releases_to_prune(p, 1, {})) == std::vector<std::string>{"222222222222", "333333333333"});
  CHECK(sorted(releases_to_prune(p, 2, {})) == std::vector<std::string>{"222222222222"});
  CHECK(releases_to_prune(p, 4, {}).empty());
  // Last use, not creation: the oldest created but freshly used one is kept.
  p.releases["222222222222"].last_used_us = 50;
  CHECK(sorted(releases_to_prune(p, 2, {})) == std::vector<std::string>{"333333333333"});

  CHECK(releases_to_prune(production_record{}, 1, {}).empty());
}

TEST_CASE("deployment - previous_release is the most recently active other release", "[deployment]") {
  shop_stream s;
  CHECK(previous_release(s.prod).empty());
  s.deploy("aaaaaaaaaaaa", 4101);
  CHECK(previous_release(s.prod).empty());  // only the current one
  s.deploy("bbbbbbbbbbbb", 4102);
  CHECK(previous_release(s.prod) == "aaaaaaaaaaaa");
  s.deploy("cccccccccccc", 4103);
  CHECK(previous_release(s.prod) == "bbbbbbbbbbbb");
  s.rollback("aaaaaaaaaaaa", 4104);
  CHECK(previous_release(s.prod) == "cccccccccccc");
  // a was last active through a rollback (deployed first, created first): it is the previous one.
  s.rollback("bbbbbbbbbbbb", 4105);
  CHECK(previous_release(s.prod) == "aaaaaaaaaaaa");
  // A release packaged by a deploy in progress was never active.
  s.packaged("dddddddddddd", "shop.999");
  CHECK(previous_release(s.prod) == "aaaaaaaaaaaa");
  // Stopping production does not change which one is previous.
  s.add(ev::production_stopped, json{{"reason", "stopped by request"}}.dump());
  CHECK(previous_release(s.prod) == "aaaaaaaaaaaa");
  // A pruned release is not a target.
  s.add(ev::release_pruned, json{{"hash", "aaaaaaaaaaaa"}, {"reason", "retention keeps 2"}}.dump());
  CHECK(previous_release(s.prod) == "cccccccccccc");

  shop_stream t;
  t.deploy("aaaaaaaaaaaa", 4101);
  t.packaged("bbbbbbbbbbbb", "shop.999");
  CHECK(previous_release(t.prod).empty());
}

TEST_CASE("deployment - unknown events and bad data leave the record alone", "[deployment]") {
  shop_stream s;
  auto id = s.deploy("aaaaaaaaaaaa", 4101);
  auto before_json = to_json(s.dep(id));
  auto before_history = history_json(s.prod);
  auto deployments = s.prod.deployments.size();
  s.add(ev::project_updated, json{{"manifest", json::object()}}.dump());
  s.add("deployment_bogus", json{{"id", id}}.dump());
  s.add(event_type(phase::building), "not json");
  s.add(event_type(phase::building), "[1,2]");
  s.add(event_type(phase::building), json{{"id", "shop.123456"}, {"message", "x"}}.dump());
  s.add(ev::deployment_cancel_requested, "not json");
  CHECK(to_json(s.dep(id)) == before_json);
  CHECK(history_json(s.prod) == before_history);
  CHECK(s.prod.deployments.size() == deployments);
  CHECK(s.prod.status == "running");
}

TEST_CASE("deployment - project_created starts production afresh", "[deployment]") {
  auto m = parse_manifest(json::parse(R"({
    "name": "shop", "source": {"path": "/srv/shop"},
    "build": {"command": ["make"], "artifacts": ["dist"]},
    "production": {"command": ["./dist/server"], "keep": 3}})"));
  REQUIRE(m.ok);
  project_state ps;
  shop_stream s;  // builds the events; they are folded into the project state here
  s.seq = 0;
  auto fold_all = [&](size_t from) {
    for (size_t i = from; i < s.events.size(); ++i) fold(ps, s.events[i]);
  };
  s.add(ev::project_created, project_created_data(m.value, 8001, 4001));
  auto old_id = s.deploy("aaaaaaaaaaaa", 4101);
  s.deploy("bbbbbbbbbbbb", 4102);
  s.queue();  // one still waiting
  fold_all(0);
  REQUIRE(ps.exists);
  CHECK(ps.name == "shop");
  CHECK(ps.spec.keep == 3);
  CHECK(ps.production.current == "bbbbbbbbbbbb");
  CHECK(ps.production.status == "running");
  CHECK(ps.production.releases.size() == 2);
  CHECK(ps.production.deployments.count(old_id) == 1);
  CHECK(queued_ids(ps.production).size() == 1);
  CHECK(ps.last_seq == s.events.back().seq);

  // Deleted, then created again under the same name: nothing of the old production remains.
  auto mark = s.events.size();
  s.add(ev::project_deleted, "{}");
  fold_all(mark);
  CHECK_FALSE(ps.exists);
  CHECK(ps.production.releases.empty());
  CHECK(ps.production.deployments.empty());
  CHECK(ps.production.current.empty());
  mark = s.events.size();
  s.add(ev::project_created, project_created_data(m.value, 8002, 4002));
  fold_all(mark);
  REQUIRE(ps.exists);
  CHECK(ps.production_port == 8002);
  CHECK(ps.production.status == "none");
  CHECK(ps.production.current.empty());
  CHECK(ps.production.process.pid == 0);
  CHECK(ps.production.releases.empty());
  CHECK(ps.production.deployments.empty());
  CHECK(ps.production.order.empty());
  CHECK(queued_ids(ps.production).empty());
  CHECK(previous_release(ps.production).empty());
  CHECK(history_json(ps.production).at("current").is_null());

  // Its first deployment has a new id: ids are unique across the re-creation.
  mark = s.events.size();
  auto new_id = s.queue();
  fold_all(mark);
  CHECK(new_id != old_id);
  CHECK(ps.production.order == std::vector<std::string>{new_id});
  CHECK(ps.production.deployments.count(old_id) == 0);

  // project_created alone also resets (a stream replayed from a created event).
  project_state again;
  for (auto& e : s.events) {
    if (e.type == ev::project_deleted) break;
    fold(again, e);
  }
  REQUIRE(again.production.current == "bbbbbbbbbbbb");
  event_record created;
  created.seq = s.seq + 1;
  created.stream = "project/shop";
  created.type = ev::project_created;
  created.ts_us = s.ts + 1;
  created.data = project_created_data(m.value, 8003, 4003);
  fold(again, created);
  CHECK(again.production.current.empty());
  CHECK(again.production.status == "none");
  CHECK(again.production.releases.empty());
  CHECK(again.production.deployments.empty());
  CHECK(again.production_port == 8003);
}

TEST_CASE("deployment - an end is final", "[deployment]") {
  shop_stream s;
  auto id = s.queue();
  s.phase_event(id, phase::preparing, "snapshotting the source");
  s.phase_event(id, phase::completed, "deployed", json{{"hash", "aaaaaaaaaaaa"}});
  auto before = to_json(s.dep(id));
  // Late events for a finished deployment (e.g. a replayed interruption) change nothing.
  deployment_error err{"preparing", "berth stopped", "interrupted"};
  s.phase_event(id, phase::failed, err.message, json::object(), &err);
  s.phase_event(id, phase::building, "building");
  s.add(ev::deployment_cancel_requested, json{{"id", id}}.dump());
  CHECK(to_json(s.dep(id)) == before);
  CHECK(s.dep(id).status() == "completed");
}
