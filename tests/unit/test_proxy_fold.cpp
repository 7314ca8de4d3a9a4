// The proxy's routes are the fold of the stream `proxy`: what Caddy is given after any restart.
#include <catch2/catch.hpp>

#include "messages/proxy.hpp"

using namespace berth;
using json = nlohmann::json;

namespace {
event_record ev_of(uint64_t seq, const std::string& type, const json& data) {
  event_record e;
  e.seq = seq;
  e.stream = proxy_stream;
  e.type = type;
  e.ts_us = 1'000'000 * static_cast<int64_t>(seq);
  e.data = data.dump();
  return e;
}
}  // namespace

TEST_CASE("proxy fold - routes are set replaced and removed by id", "[proxy]") {
  proxy_record s;
  proxy_route shop{"shop-production", "shop", "shop.localhost", 8041, 6001};
  fold(s, ev_of(1, ev::route_set, to_json(shop)));
  shop.upstream_port = 6002;  // a deploy flips the upstream
  fold(s, ev_of(2, ev::route_set, to_json(shop)));
  fold(s, ev_of(3, ev::route_set, to_json(proxy_route{"shop-preview", "shop", "shop-preview.localhost", 0, 4041})));
  REQUIRE(s.routes.size() == 2);
  CHECK(s.routes.at("shop-production").upstream_port == 6002);
  CHECK(s.routes.at("shop-production").listen_port == 8041);
  CHECK(s.routes.at("shop-preview").host == "shop-preview.localhost");
  fold(s, ev_of(4, ev::route_removed, {{"id", "shop-preview"}}));
  CHECK(s.routes.size() == 1);
  CHECK(s.routes.count("shop-preview") == 0);
  // Nonsense is ignored.
  fold(s, ev_of(5, ev::route_set, json::object()));
  fold(s, ev_of(6, ev::route_removed, {{"id", "nope"}}));
  fold(s, ev_of(7, "route_set", json("not an object")));
  CHECK(s.routes.size() == 1);
}

TEST_CASE("proxy fold - Caddy's process is known until it exits", "[proxy]") {
  proxy_record s;
  CHECK_FALSE(s.running);
  fold(s, ev_of(1, ev::proxy_started,
                {{"pid", 4242}, {"start_time", 99}, {"pgid", 4242}, {"admin_port", 2019}, {"http_port", 8080}}));
  CHECK(s.running);
  CHECK(s.caddy.pid == 4242);
  int pid = 0, pgid = 0;
  uint64_t start_time = 0;
  REQUIRE(parse_process_instance_id(s.caddy.id, &pid, &start_time, &pgid));
  CHECK(start_time == 99);
  CHECK(s.http_port == 8080);
  fold(s, ev_of(2, ev::proxy_exited, {{"reason", "Caddy killed by signal 9"}}));
  CHECK_FALSE(s.running);
  CHECK(s.caddy.pid == 0);
  CHECK(s.reason == "Caddy killed by signal 9");
  CHECK(s.http_port == 8080);  // the next Caddy serves sites on the same port
}
