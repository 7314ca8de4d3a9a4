#include "bench/common/switch_clients.hpp"

#include <algorithm>
#include <cmath>


namespace berth::bench {

namespace it = berth::it;
using std::chrono::milliseconds;

namespace {

double nearest_rank(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t r = static_cast<size_t>(std::ceil(q * v.size()));
  return v[std::min(std::max<size_t>(r, 1), v.size()) - 1];
}

}  // namespace

nlohmann::json kind_figures::to_json() const {
  auto r2 = [](double x) { return std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(std::round(x * 100) / 100); };
  return {{"protocol", protocol}, {"requests", requests},   {"failed", failed},
          {"unexpected_closes", unexpected_closes},         {"clean_closes", clean_closes},
          {"p50_ms", r2(p50)},    {"p99_ms", r2(p99)},      {"longest_stall_ms", r2(longest_stall_ms)},
          {"errors", errors}};
}

client_set::client_set(const it::target& t) {
  clients_.emplace_back("new-conn GET", it::new_connection_client(t, "/", milliseconds(20)));
  clients_.emplace_back("kept-alive GET", it::keepalive_get_client(t, "/", milliseconds(20)));
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
