#include "bench/common/switch_clients.hpp"

#include <algorithm>
#include <cmath>

#include "tests/integration/traffic_wire.hpp"

namespace berth::bench {

namespace it = berth::it;
namespace wire = berth::it::wire;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr auto answer_timeout = milliseconds(5000);  // as traffic_support's HTTP clients

class keepalive_get : public it::traffic_client {
 public:
  keepalive_get(it::target t, std::string path, milliseconds every)
      : t_(std::move(t)), path_(std::move(path)), every_(every) {
    t_.tls.http2 = false;  // our own HTTP/1.1 parser
  }
  ~keepalive_get() override { stop(); }  // the thread uses our members: joined first

 protected:
  void run(std::atomic<bool>& stopping) override {
    for (uint64_t i = 0; !stopping.load(); ++i) {
      check_idle();
      if (!c_.is_open()) {
        buf_.clear();
        if (auto e = c_.open(t_); !e.empty()) {
          note_failed("connect: " + e);
          if (pause(std::max(every_, milliseconds(100)))) return;
          continue;
        }
        note_protocol("http/1.1");
      }
      auto t0 = clock_type::now();
      bool sent = c_.send_all("GET " + path_ + " HTTP/1.1\r\nHost: " + wire::host_header(t_) +
                              "\r\nUser-Agent: berth-bench\r\n\r\n");
      bool closed = false;
      wire::response r;
      if (sent) r = wire::read_response(c_, buf_, t0 + answer_timeout, closed);
      if (!sent || !r.complete) {
        note_failed("GET #" + std::to_string(i) + " got no complete answer (" + c_.error + ")");
        if (!sent || closed) note_unexpected_close("with a GET outstanding: " + c_.error);
        c_.close();
      } else {
        if (r.status >= 500 || r.status < 200)
          note_failed("GET #" + std::to_string(i) + ": HTTP " + std::to_string(r.status) + " '" +
                      r.body.substr(0, 100) + "'");
        else
          note_ok(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count(), r.body);
        if (r.connection_close()) {
          note_clean_close();
          c_.close();
        }
      }
      if (pause(every_)) return;
    }
  }

 private:
  // An idle kept-alive connection the server closed under us: a client would have to notice
  // and reconnect (counted, then closed here).
  void check_idle() {
    if (!c_.is_open()) return;
    auto got = c_.read_some(buf_, milliseconds(0));
    if (got == wire::peer_closed || got == wire::broken) {
      note_unexpected_close("idle kept-alive connection closed by the server: " + c_.error);
      c_.close();
    } else if (got == wire::got_bytes) {
      note_failed("bytes nobody asked for on an idle connection: '" + buf_.substr(0, 80) + "'");
      c_.close();
    }
  }
  it::target t_;
  std::string path_;
  milliseconds every_;
  wire::connection c_;
  std::string buf_;
};

double nearest_rank(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t r = static_cast<size_t>(std::ceil(q * v.size()));
  return v[std::min(std::max<size_t>(r, 1), v.size()) - 1];
}

}  // namespace

std::unique_ptr<it::traffic_client> keepalive_get_client(it::target t, std::string path, milliseconds every) {
  return std::make_unique<keepalive_get>(std::move(t), std::move(path), every);
}

nlohmann::json kind_figures::to_json() const {
  auto r2 = [](double x) { return std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(std::round(x * 100) / 100); };
  return {{"protocol", protocol}, {"requests", requests},   {"failed", failed},
          {"unexpected_closes", unexpected_closes},         {"clean_closes", clean_closes},
          {"p50_ms", r2(p50)},    {"p99_ms", r2(p99)},      {"longest_stall_ms", r2(longest_stall_ms)},
          {"errors", errors}};
}

client_set::client_set(const it::target& t) {
  clients_.emplace_back("new-conn GET", it::new_connection_client(t, "/", milliseconds(20)));
  clients_.emplace_back("kept-alive GET", keepalive_get_client(t, "/", milliseconds(20)));
  clients_.emplace_back("kept-alive POST", it::keepalive_post_client(t, "/echo", milliseconds(20)));
  clients_.emplace_back("stream", it::streaming_client(t, "/stream"));
  clients_.emplace_back("websocket", it::websocket_client(t, "/ws", milliseconds(100), true));
}

void client_set::start() {
  for (auto& c : clients_) c.second->start();
}

std::vector<kind_figures> client_set::stop() {
  std::vector<kind_figures> out;
  for (auto& [kind, c] : clients_) {
    auto r = c->stop();
    kind_figures f;
    f.kind = kind;
    f.protocol = r.protocol;
    f.requests = r.ok + r.failed;
    f.failed = r.failed;
    f.unexpected_closes = r.unexpected_closes;
    f.clean_closes = r.clean_closes;
    f.p50 = nearest_rank(r.latencies_ms, 0.50);
    f.p99 = nearest_rank(r.latencies_ms, 0.99);
    f.longest_stall_ms = r.longest_stall_ms;
    f.errors = r.errors;
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace berth::bench
