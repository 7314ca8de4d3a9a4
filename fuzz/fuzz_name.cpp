// Names and ids from URLs and the command line: project names (check_name, every
// /api/projects/{name} route, /api/check/{name}, POST /api/deploy), deployment ids
// (split_deployment_id, /api/deployments/{id}), `berth audit replay --until` times
// (parse_iso8601) and stream names (valid_stream_name). Input: the string itself.
// Checked against small reference rules and round trips.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.hpp"
#include "messages/deployment.hpp"
#include "messages/event.hpp"
#include "messages/manifest.hpp"
#include "messages/project_state.hpp"

using namespace berth;

namespace {

// The DNS label rule of manifest.hpp, without the reserved list.
bool label_shape(const std::string& s) {
  if (s.size() < 3 || s.size() > 63) return false;
  if (s.front() < 'a' || s.front() > 'z' || s.back() == '-') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

// 0000-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999Z: what iso8601() writes with 4 digits.
constexpr int64_t kYear0Us = -62'167'219'200'000'000;
constexpr int64_t kYear10000Us = 253'402'300'800'000'000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string s(reinterpret_cast<const char*>(data), size);

  auto nc = check_name(s);
  FUZZ_CHECK(nc.valid == nc.reason.empty());
  if (nc.valid) {
    FUZZ_CHECK(label_shape(s));
    FUZZ_CHECK(valid_stream_name(project_stream(s)));
  } else if (label_shape(s)) {
    FUZZ_CHECK(nc.reason == "is reserved");
  }

  std::string project;
  uint64_t seq = 0;
  if (split_deployment_id(s, project, seq)) {
    FUZZ_CHECK(seq > 0 && !project.empty());
    FUZZ_CHECK(deployment_id(project, seq) == s);  // one spelling per id
  }

  int64_t ts = 0;
  if (parse_iso8601(s, ts) && ts >= kYear0Us && ts < kYear10000Us) {
    int64_t back = 0;
    auto text = iso8601(ts);
    FUZZ_CHECK(parse_iso8601(text, back));
    FUZZ_CHECK(back == ts);
  }

  if (valid_stream_name(s)) FUZZ_CHECK(!s.empty() && s.find('|') == std::string::npos);
  return 0;
}
