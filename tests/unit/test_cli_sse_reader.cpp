// The CLI's incremental SSE parsing (cli/client/sse_reader.hpp) against the framing berth's
// server writes (http/sse.hpp), fed in arbitrary pieces as a socket delivers them.
#include <catch2/catch.hpp>

#include "cli/client/sse_reader.hpp"
#include "http/sse.hpp"

using berth::cli::sse_message;
using berth::cli::sse_reader;

TEST_CASE("sse_reader: events cut anywhere come out whole, comments dropped", "[cli]") {
  std::string stream = berth::http::sse_comment("keep-alive") +
                       berth::http::sse_event("progress", {{"phase", "building"}, {"progress", 15}}) +
                       "id: 42\nevent: log\ndata: {\"text\":\"a\\nb\\n\"}\n\n" + "data: one\r\ndata: two\r\n\r\n";
  for (size_t piece : {size_t(1), size_t(3), size_t(7), stream.size()}) {
    sse_reader reader;
    std::vector<sse_message> got;
    for (size_t at = 0; at < stream.size(); at += piece)
      for (auto& ev : reader.feed(std::string_view(stream).substr(at, piece))) got.push_back(ev);
    INFO("piece " << piece);
    REQUIRE(got.size() == 3);
    CHECK(got[0].event == "progress");
    CHECK(nlohmann::json::parse(got[0].data)["phase"] == "building");
    CHECK(got[1].event == "log");
    CHECK(got[1].id == "42");
    CHECK(nlohmann::json::parse(got[1].data)["text"] == "a\nb\n");
    CHECK(got[2].event == "message");
    CHECK(got[2].data == "one\ntwo");
  }
}

TEST_CASE("sse_reader: an unfinished event waits for its blank line", "[cli]") {
  sse_reader reader;
  CHECK(reader.feed("event: end\ndata: {}\n").empty());
  auto got = reader.feed("\n");
  REQUIRE(got.size() == 1);
  CHECK(got[0].event == "end");
  CHECK(reader.feed("event: nodata\n\n").empty());  // no data: not dispatched, as in EventSource
}
