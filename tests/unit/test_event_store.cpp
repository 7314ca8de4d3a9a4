// Unit tests for actors/event_store: group commit, per-request atomicity, reads, stats.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include "actors/event_store.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "runtime/eventlog/event_log.hpp"

using namespace berth;

namespace {

namespace fs = std::filesystem;

struct store_fixture {
  std::string dir;
  std::shared_ptr<event_log> log;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor store;

  store_fixture() {
    char tmpl[] = "/tmp/berth-test-store-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    std::unique_ptr<event_log> l;
    auto st = event_log::open(dir + "/events", event_log::mode::read_write, &l);
    INFO(st.message());
    REQUIRE(st.is_ok());
    log = std::move(l);
    cfg.add_message_types<caf::id_block::berth>();
    sys = std::make_unique<caf::actor_system>(cfg);
    store = spawn_event_store(*sys, log);
  }

  ~store_fixture() {
    caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
    store = nullptr;
    sys.reset();  // waits for the store and its committer
    log.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  // A request from a fresh scoped_actor; returns the error (none on success).
  template <class T, class... Ts>
  caf::error ask(T& result, Ts&&... xs) {
    caf::scoped_actor self{*sys};
    caf::error err;
    self->request(store, std::chrono::seconds(10), std::forward<Ts>(xs)...)
        .receive([&](T& r) { result = std::move(r); }, [&](caf::error& e) { err = std::move(e); });
    return err;
  }

  log_stats stats() {
    log_stats s;
    REQUIRE_FALSE(ask(s, stats_atom_v));
    return s;
  }
};

new_event mk_event(std::string stream, std::string data = "{}") {
  return {std::move(stream), "test_event", std::move(data)};
}

}  // namespace

TEST_CASE("concurrent appends are grouped and all durable", "[event_store]") {
  store_fixture f;
  constexpr int threads = 8, per_thread = 200;
  std::vector<std::vector<uint64_t>> seqs(threads);
  std::vector<std::string> failures(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      caf::scoped_actor self{*f.sys};
      for (int i = 0; i < per_thread; ++i) {
        std::vector<new_event> evs{
            mk_event("writer/" + std::to_string(t), "{\"i\":" + std::to_string(i) + "}")};
        self->request(f.store, std::chrono::seconds(10), append_atom_v, std::move(evs))
            .receive(
                [&](std::vector<event_record>& recs) {
                  if (recs.size() != 1 || recs[0].stream != "writer/" + std::to_string(t) ||
                      recs[0].data != "{\"i\":" + std::to_string(i) + "}")
                    failures[t] = "unexpected record";
                  else
                    seqs[t].push_back(recs[0].seq);
                },
                [&](caf::error& err) { failures[t] = self->system().render(err); });
        if (!failures[t].empty()) return;
      }
    });
  }
  for (auto& th : pool) th.join();
  for (auto& fl : failures) CHECK(fl.empty());
  std::vector<uint64_t> all;
  for (auto& s : seqs) {
    CHECK(s.size() == per_thread);
    CHECK(std::is_sorted(s.begin(), s.end()));  // each writer's appends are ordered
    all.insert(all.end(), s.begin(), s.end());
  }
  std::sort(all.begin(), all.end());
  REQUIRE(all.size() == threads * per_thread);
  for (size_t i = 0; i < all.size(); ++i) REQUIRE(all[i] == i + 1);  // unique, 1..1600

  auto st = f.stats();
  CHECK(st.last_seq == 1600);
  CHECK(st.appended == 1600);
  CHECK(st.commits >= 1);
  CHECK(st.commits < threads * per_thread);  // grouping happened
  WARN("commits for 1600 appends from 8 writers: " << st.commits);
  auto v = f.log->verify();
  CHECK(v.ok);
  CHECK(v.checked == 1600);
}

TEST_CASE("each request's events are contiguous and in order", "[event_store]") {
  store_fixture f;
  constexpr int threads = 8, per_thread = 40;
  std::vector<std::string> failures(threads);
  std::vector<std::vector<std::vector<event_record>>> replies(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      caf::scoped_actor self{*f.sys};
      for (int i = 0; i < per_thread; ++i) {
        std::vector<new_event> evs;
        int n = 1 + (i + t) % 5;
        for (int k = 0; k < n; ++k)
          evs.push_back(mk_event("w" + std::to_string(t) + "/" + std::to_string(k % 2),
                           "{\"i\":" + std::to_string(i) + ",\"k\":" + std::to_string(k) + "}"));
        self->request(f.store, std::chrono::seconds(10), append_atom_v, evs)
            .receive(
                [&](std::vector<event_record>& recs) {
                  if (recs.size() != evs.size()) {
                    failures[t] = "wrong record count";
                    return;
                  }
                  for (size_t k = 0; k < recs.size(); ++k) {
                    if (recs[k].stream != evs[k].stream || recs[k].data != evs[k].data)
                      failures[t] = "records out of order";
                    if (k > 0 && recs[k].seq != recs[k - 1].seq + 1)
                      failures[t] = "request not contiguous";
                    if (k > 0 && recs[k].prev_hash != recs[k - 1].hash)
                      failures[t] = "chain broken inside a request";
                  }
                  replies[t].push_back(std::move(recs));
                },
                [&](caf::error& err) { failures[t] = self->system().render(err); });
        if (!failures[t].empty()) return;
      }
    });
  }
  for (auto& th : pool) th.join();
  for (auto& fl : failures) CHECK(fl.empty());
  // The replies match what the log holds.
  std::map<uint64_t, std::string> by_seq;
  size_t total = 0;
  for (auto& per : replies)
    for (auto& recs : per)
      for (auto& r : recs) {
        by_seq[r.seq] = r.hash;
        ++total;
      }
  CHECK(by_seq.size() == total);
  uint64_t n = 0;
  REQUIRE(f.log->scan(1, [&](const event_record& r) {
                  ++n;
                  CHECK(by_seq[r.seq] == r.hash);
                  return true;
                }).is_ok());
  CHECK(n == total);
  auto st = f.stats();
  CHECK(st.appended == total);
  CHECK(st.commits < threads * per_thread);
  CHECK(f.log->verify().ok);
}

TEST_CASE("an invalid append fails alone", "[event_store]") {
  store_fixture f;
  std::vector<event_record> first;
  REQUIRE_FALSE(f.ask(first, append_atom_v, std::vector<new_event>{mk_event("seed")}));
  REQUIRE(first.size() == 1);

  // Fire several requests without waiting, so they queue behind the in-flight commit
  // and form one group; the invalid ones must fail alone.
  caf::scoped_actor self{*f.sys};
  std::vector<std::vector<new_event>> reqs = {
      {mk_event("a"), mk_event("a")},
      {mk_event("b"), mk_event("bad|stream")},  // invalid: nothing of it is written
      {mk_event("c")},
      {mk_event("d", "{broken json")},    // invalid
      {mk_event("e"), mk_event("e"), mk_event("e")},
  };
  std::vector<decltype(self->request(f.store, std::chrono::seconds(10), append_atom_v,
                                     reqs[0]))>
      handles;
  for (auto& r : reqs)
    handles.push_back(self->request(f.store, std::chrono::seconds(10), append_atom_v, r));
  std::vector<size_t> got(reqs.size(), 0);
  std::vector<errc> codes(reqs.size(), errc::nil);
  for (size_t i = 0; i < handles.size(); ++i) {
    handles[i].receive([&](std::vector<event_record>& recs) { got[i] = recs.size(); },
                       [&](caf::error& err) { codes[i] = view(err).code; });
  }
  CHECK(got[0] == 2);
  CHECK(codes[0] == errc::nil);
  CHECK(codes[1] == errc::invalid_request);
  CHECK(got[1] == 0);
  CHECK(got[2] == 1);
  CHECK(codes[3] == errc::invalid_request);
  CHECK(got[4] == 3);

  auto st = f.stats();
  CHECK(st.last_seq == 7);  // 1 + 2 + 1 + 3
  CHECK(st.appended == 7);
  std::vector<std::string> names;
  REQUIRE_FALSE(f.ask(names, list_streams_atom_v, std::string{}));
  CHECK(names == std::vector<std::string>{"a", "c", "e", "seed"});
  CHECK(f.log->verify().ok);
}

TEST_CASE("reads through the event_store", "[event_store]") {
  store_fixture f;
  std::vector<event_record> recs;
  REQUIRE_FALSE(f.ask(recs, append_atom_v,
                      std::vector<new_event>{mk_event("project/web", R"({"n":1})"), mk_event("project/web2"),
                                             mk_event("project/web", R"({"n":2})"), mk_event("ports")}));
  REQUIRE(recs.size() == 4);

  std::vector<event_record> out;
  REQUIRE_FALSE(f.ask(out, read_stream_atom_v, std::string("project/web"), uint64_t{0},
                      uint64_t{100}));
  REQUIRE(out.size() == 2);
  CHECK(out[0].seq == 1);
  CHECK(out[1].seq == 3);
  CHECK(out[1].data == R"({"n":2})");
  REQUIRE_FALSE(f.ask(out, read_stream_atom_v, std::string("project/web"), uint64_t{2},
                      uint64_t{100}));
  REQUIRE(out.size() == 1);
  CHECK(out[0].seq == 3);

  REQUIRE_FALSE(f.ask(out, last_event_atom_v, std::string("project/web2")));
  REQUIRE(out.size() == 1);
  CHECK(out[0].seq == 2);
  REQUIRE_FALSE(f.ask(out, last_event_atom_v, std::string("nothing")));
  CHECK(out.empty());

  REQUIRE_FALSE(f.ask(out, read_all_atom_v, uint64_t{2}, uint64_t{2}));
  REQUIRE(out.size() == 2);
  CHECK(out[0].seq == 2);
  CHECK(out[1].seq == 3);
  REQUIRE_FALSE(f.ask(out, read_all_atom_v, uint64_t{0}, uint64_t{0}));  // 0 = no limit
  CHECK(out.size() == 4);

  std::vector<std::string> names;
  REQUIRE_FALSE(f.ask(names, list_streams_atom_v, std::string("project/")));
  CHECK(names == std::vector<std::string>{"project/web", "project/web2"});

  auto err = f.ask(out, read_stream_atom_v, std::string("bad|name"), uint64_t{0}, uint64_t{1});
  CHECK(view(err).code == errc::invalid_request);

  // An empty append is answered at once and writes nothing.
  REQUIRE_FALSE(f.ask(out, append_atom_v, std::vector<new_event>{}));
  CHECK(out.empty());
  auto st = f.stats();
  CHECK(st.last_seq == 4);
  CHECK(st.commits == 1);
  CHECK(st.appended == 4);
}

TEST_CASE("stopping the store answers every pending append", "[event_store]") {
  store_fixture f;
  caf::scoped_actor self{*f.sys};
  using handle_t = decltype(self->request(f.store, std::chrono::seconds(5), append_atom_v,
                                          std::vector<new_event>{}));
  std::vector<handle_t> handles;
  for (int i = 0; i < 50; ++i)
    handles.push_back(self->request(f.store, std::chrono::seconds(5), append_atom_v,
                                    std::vector<new_event>{mk_event("s"), mk_event("s")}));
  int ok = 0, refused = 0, unavailable = 0, other = 0;
  uint64_t max_seq = 0;
  for (size_t i = 0; i < handles.size(); ++i) {
    // Stop the store once the first group is acknowledged, while later appends are queued
    // in its state or being committed.
    if (i == 1) caf::anon_send_exit(f.store, caf::exit_reason::user_shutdown);
    handles[i].receive(
        [&](std::vector<event_record>& recs) {
          ++ok;
          if (recs.size() == 2) max_seq = std::max(max_seq, recs[1].seq);
        },
        [&](caf::error& err) {
          // Answered by the dying store (unavailable) or bounced by CAF; never a timeout.
          if (err == caf::sec::request_receiver_down)
            ++refused;
          else if (view(err).code == errc::unavailable)
            ++refused, ++unavailable;
          else
            ++other;
        });
  }
  CHECK(ok >= 1);
  CHECK(ok + refused == 50);
  WARN("ok=" << ok << " refused=" << refused << " unavailable=" << unavailable);
  CHECK(other == 0);
  // Whatever was acknowledged is in the log, and the log is intact.
  CHECK(f.log->last_seq() >= max_seq);
  CHECK(f.log->verify().ok);
}

namespace {

// Wraps a real log: can fail appends, slow them down and records each group's size.
class scripted_log : public event_log {
 public:
  explicit scripted_log(std::shared_ptr<event_log> inner) : inner_(std::move(inner)) {}
  std::atomic<int> fail_next{0};
  std::atomic<int> delay_ms{0};
  std::atomic<int> started{0};
  std::mutex mu;
  std::vector<size_t> groups;
  std::vector<bool> synced;

  status append(const std::vector<new_event>& events, bool sync,
                std::vector<event_record>* out) override {
    ++started;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
    {
      std::lock_guard<std::mutex> g(mu);
      groups.push_back(events.size());
      synced.push_back(sync);
    }
    if (fail_next > 0) {
      --fail_next;
      return status::io_error("simulated disk failure");
    }
    return inner_->append(events, sync, out);
  }
  status read_stream(const std::string& s, uint64_t f, uint64_t l,
                     std::vector<event_record>* out) const override {
    return inner_->read_stream(s, f, l, out);
  }
  status last_of_stream(const std::string& s, event_record* out) const override {
    return inner_->last_of_stream(s, out);
  }
  status scan(uint64_t from,
              const std::function<bool(const event_record&)>& fn) const override {
    return inner_->scan(from, fn);
  }
  std::vector<std::string> streams(const std::string& p) const override {
    return inner_->streams(p);
  }
  uint64_t last_seq() const override { return inner_->last_seq(); }
  verify_result verify() const override { return inner_->verify(); }

 private:
  std::shared_ptr<event_log> inner_;
};

}  // namespace

TEST_CASE("appends that arrive during a commit go out as one synced batch", "[event_store]") {
  store_fixture f;
  auto slow = std::make_shared<scripted_log>(f.log);
  slow->delay_ms = 100;
  auto store = spawn_event_store(*f.sys, slow);
  caf::scoped_actor self{*f.sys};
  using handle_t = decltype(self->request(store, std::chrono::seconds(5), append_atom_v,
                                          std::vector<new_event>{}));
  std::vector<handle_t> handles;
  handles.push_back(self->request(store, std::chrono::seconds(5), append_atom_v,
                                  std::vector<new_event>{mk_event("first")}));
  // Wait until the first commit is running (it takes 100 ms), then pile up 10 requests.
  for (int i = 0; i < 500 && slow->started.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(slow->started.load() == 1);
  for (int i = 0; i < 10; ++i)
    handles.push_back(self->request(store, std::chrono::seconds(5), append_atom_v,
                                    std::vector<new_event>{mk_event("r" + std::to_string(i)),
                                                           mk_event("r" + std::to_string(i))}));
  std::vector<uint64_t> firsts;
  for (auto& h : handles)
    h.receive([&](std::vector<event_record>& recs) { firsts.push_back(recs.front().seq); },
              [&](caf::error& err) { FAIL(f.sys->render(err)); });
  CHECK(firsts.size() == 11);
  {
    std::lock_guard<std::mutex> g(slow->mu);
    CHECK(slow->groups == std::vector<size_t>{1, 20});  // 1 commit, then all 10 requests
    CHECK(slow->synced == std::vector<bool>{true, true});
  }
  // Requests keep their arrival order inside the group.
  for (size_t i = 1; i < firsts.size(); ++i) CHECK(firsts[i] == 2 + (i - 1) * 2);
  log_stats st;
  self->request(store, std::chrono::seconds(5), stats_atom_v)
      .receive([&](log_stats& s) { st = s; }, [&](caf::error& err) { FAIL(f.sys->render(err)); });
  CHECK(st.commits == 2);
  CHECK(st.appended == 21);
  caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
}

TEST_CASE("a storage failure fails its group with storage_error, the store recovers",
          "[event_store]") {
  store_fixture f;
  auto flaky = std::make_shared<scripted_log>(f.log);
  flaky->fail_next = 1;
  auto store = spawn_event_store(*f.sys, flaky);
  caf::scoped_actor self{*f.sys};
  caf::error err;
  self->request(store, std::chrono::seconds(5), append_atom_v,
                std::vector<new_event>{mk_event("x")})
      .receive([&](std::vector<event_record>&) {}, [&](caf::error& e) { err = e; });
  CHECK(view(err).code == errc::storage_error);
  CHECK(view(err).message.find("simulated disk failure") != std::string::npos);
  CHECK(f.log->last_seq() == 0);
  std::vector<event_record> recs;
  self->request(store, std::chrono::seconds(5), append_atom_v,
                std::vector<new_event>{mk_event("x")})
      .receive([&](std::vector<event_record>& r) { recs = std::move(r); },
               [&](caf::error& e) { FAIL(f.sys->render(e)); });
  REQUIRE(recs.size() == 1);
  CHECK(recs[0].seq == 1);
  log_stats st;
  self->request(store, std::chrono::seconds(5), stats_atom_v)
      .receive([&](log_stats& s) { st = s; }, [&](caf::error& e) { FAIL(f.sys->render(e)); });
  CHECK(st.commits == 1);
  CHECK(st.appended == 1);
  caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
}

TEST_CASE("event store appends a signed checkpoint every N events, and nothing while idle", "[event_store][audit]") {
  store_fixture f;
  caf::anon_send_exit(f.store, caf::exit_reason::user_shutdown);
  audit_key key;
  REQUIRE(audit_key::load_or_create(f.dir + "/keys/audit.key", &key));
  auto cp = std::make_shared<log_checkpointer>(key, 3);
  f.store = spawn_event_store(*f.sys, f.log, event_store_state::default_max_linger, cp);
  for (int i = 0; i < 7; ++i) {
    std::vector<event_record> out;
    REQUIRE_FALSE(f.ask(out, append_atom_v, std::vector<new_event>{mk_event("project/a")}));
  }
  // Seqs 1 2 3 [4] 5 6 [7] 8 9 [10]: a checkpoint once 3 events (its predecessor included) follow
  // the head the last one signed.
  std::vector<event_record> cps;
  auto settled = [&] {
    cps.clear();
    f.log->read_stream(audit_stream, 1, 0, &cps);
    return cps.size() == 3;
  };
  for (int i = 0; i < 200 && !settled(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(cps.size() == 3);
  CHECK(payload_object(cps[0].data).value("seq", 0) == 3);
  CHECK(cps[2].seq == 10);
  auto last = f.log->last_seq();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(f.log->last_seq() == last);  // idle: nothing more
  auto r = verify_anchors(*f.log, key, nullptr);
  INFO(r.reason);
  CHECK(r.ok);
  CHECK(r.checkpoints == 3);
}
