// http/sse.cpp: the line splitter that cuts a deployment's build log (any bytes the build
// prints) into SSE `log` events, SSE framing, and the progress/end data derived from a
// deployment detail. Input: FuzzedDataProvider bytes: a max line length, then chunks as they
// would arrive from the file. Checked: the lines do not depend on how the bytes were chunked
// (against a whole-input reference) and every SSE frame is one event.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "http/sse.hpp"

using namespace berth;
using json = nlohmann::json;

namespace {

// What line_splitter promises for the whole input at once.
std::vector<std::string> reference_lines(const std::string& all, size_t max_line) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < all.size()) {
    auto nl = all.find('\n', pos);
    std::string line = all.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    while (line.size() > max_line) {
      out.push_back(line.substr(0, max_line));
      line.erase(0, max_line);
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);  // also the unterminated rest (never empty here), as flush() gives it
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return out;
}

void check_frame(const std::string& frame) {
  // "event: <name>\ndata: <one line>\n\n"
  FUZZ_CHECK(frame.rfind("event: ", 0) == 0);
  FUZZ_CHECK(std::count(frame.begin(), frame.end(), '\n') == 3);
  FUZZ_CHECK(frame.size() >= 2 && frame.compare(frame.size() - 2, 2, "\n\n") == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  auto max_line = fdp.ConsumeIntegralInRange<size_t>(1, 96);
  http::line_splitter split(max_line);
  std::string all;
  std::vector<std::string> lines;
  while (fdp.remaining_bytes() > 0) {
    auto chunk = fdp.ConsumeRandomLengthString(256);
    all += chunk;
    for (auto& l : split.feed(chunk)) lines.push_back(std::move(l));
  }
  if (auto rest = split.flush()) lines.push_back(std::move(*rest));
  FUZZ_CHECK(split.pending().empty());
  for (auto& l : lines) FUZZ_CHECK(l.size() <= max_line && l.find('\n') == std::string::npos);
  FUZZ_CHECK(lines == reference_lines(all, max_line));

  // Each line becomes a `log` event; the bytes are not necessarily UTF-8.
  for (auto& l : lines) check_frame(http::sse_event("log", json{{"line", l}}));
  auto comment = http::sse_comment(all);
  FUZZ_CHECK(std::count(comment.begin(), comment.end(), '\n') == 2 &&
             comment.find('\r') == std::string::npos);

  // The same bytes as a deployment detail (what the projects actor answers).
  auto detail = json::parse(all, nullptr, false);
  if (detail.is_discarded()) return 0;
  check_frame(http::sse_event("progress", http::progress_data(detail)));
  size_t seen = max_line - 1;  // a previous poll's count, possibly stale
  for (auto& p : http::passed_phases(detail, seen, json::object()))
    check_frame(http::sse_event("progress", p));
  std::string name;
  check_frame(http::sse_event("end", http::end_data(detail, name)));
  FUZZ_CHECK(name == "complete" || name == "error");
  return 0;
}
