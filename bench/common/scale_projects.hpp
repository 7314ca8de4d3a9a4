// The idle fleet of bench_scale: many projects created over HTTP (nothing started), and the
// kill -9 + restart of berth measured until every one of them answers its GET again.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/common/bench_session.hpp"

namespace berth::bench {

// Where the fleet's berth listens and how to reach it.
struct fleet_api {
  uint16_t port = 0;
  std::string token;
};

// "idle-00042": the i-th idle project's name (zero-padded so that names sort as created).
std::string idle_name(size_t i);

// Creates every project of `names` with POST /api/projects from `clients` keep-alive clients at
// once: a manifest with a preview, a build and a production command (on `src`, which holds
// tiny_http and VERSION) and nothing started. Returns the seconds it took; fail()s the session on any answer but 201.
double create_idle_projects(session& s, const fleet_api& api, const std::vector<std::string>& names,
                            const std::string& src, int clients);

// What a restart looked like from outside.
struct restart_result {
  double last_answer_s = 0;  // from spawn to the last project's first 200
  int list_status = 0;       // the first answer to GET /api/projects (-1: accepted, never answered)
  double list_first_ms = 0;  // when that first answer came
  double list_ok_ms = -1;    // when GET /api/projects first answered 200 (-1: not within the limit)
  long retries = 0;          // project GETs answered but not 200 (each retried after 5 ms)
  size_t answered = 0;       // projects that answered 200 within the limit (all: complete)
  bool complete = false;
  std::string first_problem;  // the first answer that was not 200, or transport error ("" if none)
};

// SIGKILLs the running berth, starts it again with `berth_args` (the same data dir and token)
// and, from the moment of the spawn, GETs /api/projects (first request as soon as the port
// accepts) and every project of `names` (from `clients` clients at once, each retried until 200
// with the project's own name in the body). Stops at `limit` (complete=false, last_answer_s =
// the limit); fail()s the session on a 200 without the project.
restart_result restart_and_sweep(session& s, const std::vector<std::string>& berth_args, const fleet_api& api,
                                 const std::vector<std::string>& names, int clients, std::chrono::seconds limit);

}  // namespace berth::bench
