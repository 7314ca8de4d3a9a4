#include <catch2/catch.hpp>

#include "tests/unit/support.hpp"

#include <fstream>

#include "http/sse.hpp"
#include "messages/deployment.hpp"

using namespace berth::http;
using json = nlohmann::json;
using berth::test::temp_dir;
using berth::test::write_file;

namespace {

void append(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::app) << text;
}

using lines = std::vector<std::string>;

}  // namespace

TEST_CASE("sse_event frames one event with one-line JSON data", "[sse]") {
  CHECK(sse_event("progress", {{"phase", "building"}}) ==
        "event: progress\ndata: {\"phase\":\"building\"}\n\n");
  // Newlines inside strings are escaped by JSON: the data stays on one line.
  auto frame = sse_event("log", {{"line", "a\nb\r\nc"}});
  CHECK(frame == "event: log\ndata: {\"line\":\"a\\nb\\r\\nc\"}\n\n");
  CHECK(frame.find('\n') == std::string("event: log").size());
  // Invalid UTF-8 is replaced, not thrown on.
  CHECK_NOTHROW(sse_event("log", {{"line", std::string("bad \xff\xfe byte")}}));
  CHECK(sse_event("log", {{"line", std::string("\xff")}}) ==
        "event: log\ndata: {\"line\":\"\xEF\xBF\xBD\"}\n\n");
  CHECK(sse_event("error", {{"phase", nullptr}}) == "event: error\ndata: {\"phase\":null}\n\n");
}

TEST_CASE("sse_comment is a single comment line", "[sse]") {
  CHECK(sse_comment("keepalive") == ": keepalive\n\n");
  CHECK(sse_comment("a\nb") == ": a b\n\n");
}

TEST_CASE("line_splitter keeps the partial tail until it is completed", "[sse]") {
  line_splitter s;
  CHECK(s.feed("one\ntw") == lines{"one"});
  CHECK(s.pending() == "tw");
  CHECK(s.feed("o\r\nthree\n\nfo").size() == 3);
  CHECK(s.pending() == "fo");
  CHECK(s.feed("").empty());
  CHECK(s.feed("ur").empty());
  auto rest = s.flush();
  REQUIRE(rest);
  CHECK(*rest == "four");
  CHECK_FALSE(s.flush());
  CHECK(s.feed("\n") == lines{""});
}

TEST_CASE("line_splitter returns lines in order with CRLF stripped", "[sse]") {
  line_splitter s;
  CHECK(s.feed("a\r\nb\n\nc\n") == lines{"a", "b", "", "c"});
  CHECK(s.pending().empty());
  CHECK_FALSE(s.flush());
}

TEST_CASE("line_splitter cuts over-long lines", "[sse]") {
  line_splitter s(4);
  CHECK(s.feed("abcdefghij\nxy") == lines{"abcd", "efgh", "ij"});
  CHECK(s.feed("zwvu") == lines{"xyzw"});
  CHECK(s.pending() == "vu");
  CHECK(s.feed("abcd\n") == lines{"vuab", "cd"});
}

TEST_CASE("log_follower starts with the backlog then follows appended lines", "[sse]") {
  temp_dir dir("berth-sse");
  auto path = dir / "deploy.log";
  log_follower f(path);
  // The file does not exist yet.
  CHECK(f.backlog(50).empty());
  CHECK(f.poll().empty());
  std::string text;
  for (int i = 1; i <= 60; ++i) text += "line " + std::to_string(i) + "\n";
  write_file(path, text + "part");
  auto first = f.poll();
  CHECK(first.size() == 60);
  CHECK(first.front() == "line 1");

  log_follower late(path);
  auto back = late.backlog(50);
  REQUIRE(back.size() == 50);
  CHECK(back.front() == "line 11");
  CHECK(back.back() == "line 60");
  CHECK(late.poll().empty());  // "part" is not a complete line yet
  append(path, "ial\nnext");
  CHECK(late.poll() == lines{"partial"});
  append(path, " one\n");
  CHECK(late.poll() == lines{"next one"});
  append(path, "unterminated");
  CHECK(late.poll().empty());
  CHECK(late.drain() == lines{"unterminated"});
  CHECK(late.drain().empty());
}

TEST_CASE("log_follower backlog reads only the window and starts over on truncation", "[sse]") {
  temp_dir dir("berth-sse");
  auto path = dir / "deploy.log";
  write_file(path, "aaaaaaaaaa\nbb\ncc\n");
  log_follower f(path);
  // The window starts inside the first line: that line is dropped.
  CHECK(f.backlog(50, 8) == lines{"bb", "cc"});
  CHECK(f.offset() == 17);
  write_file(path, "new\n");  // truncated and rewritten
  CHECK(f.poll() == lines{"new"});
  CHECK(f.backlog(1) == lines{"new"});
}

TEST_CASE("log_follower poll reads at most max_bytes per call", "[sse]") {
  temp_dir dir("berth-sse");
  auto path = dir / "deploy.log";
  log_follower f(path);
  CHECK(f.backlog(10).empty());
  write_file(path, "12345\n67890\n");
  CHECK(f.poll(4).empty());
  CHECK(f.poll(4) == lines{"12345"});
  CHECK(f.poll(100) == lines{"67890"});
}

TEST_CASE("progress_data picks the fields a progress event carries", "[sse]") {
  json detail = {{"id", "shop.42"},          {"phase", "building"}, {"status", "running"},
                 {"progress", 30},           {"message", "npm run build"},
                 {"resources", {{"port", 4100}}}, {"phases", json::array()}};
  CHECK(progress_data(detail) == json{{"phase", "building"},
                                      {"status", "running"},
                                      {"progress", 30},
                                      {"message", "npm run build"},
                                      {"resources", {{"port", 4100}}}});
  CHECK(progress_data(json::object())["phase"].is_null());
}

TEST_CASE("end_data gives complete or error from a terminal detail", "[sse]") {
  CHECK(is_terminal_status("completed"));
  CHECK(is_terminal_status("unchanged"));
  CHECK(is_terminal_status("failed"));
  CHECK(is_terminal_status("cancelled"));
  CHECK_FALSE(is_terminal_status("running"));
  CHECK_FALSE(is_terminal_status("queued"));

  std::string name;
  json done = {{"status", "completed"},
               {"url", "http://127.0.0.1:8123"},
               {"duration_s", 4.5},
               {"resources", {{"hash", "0123456789ab"}, {"port", 8123}}},
               {"error", nullptr}};
  CHECK(end_data(done, name) == json{{"url", "http://127.0.0.1:8123"},
                                     {"hash", "0123456789ab"},
                                     {"duration_s", 4.5},
                                     {"status", "completed"}});
  CHECK(name == "complete");

  json same = {{"status", "unchanged"}, {"url", "u"}, {"duration_s", 0.1}, {"resources", json::object()}};
  CHECK(end_data(same, name)["hash"].is_null());
  CHECK(name == "complete");

  json failed = {{"status", "failed"},
                 {"phase", "failed"},
                 {"error", {{"phase", "building"}, {"message", "exit 2"}, {"code", "build_failed"}}}};
  CHECK(end_data(failed, name) == json{{"phase", "building"}, {"message", "exit 2"}, {"code", "build_failed"}});
  CHECK(name == "error");

  json cancelled = {{"status", "cancelled"}, {"phase", "cancelled"}, {"message", "cancelled"}, {"error", nullptr}};
  CHECK(end_data(cancelled, name) ==
        json{{"phase", "cancelled"}, {"message", "cancelled"}, {"code", "cancelled"}});
  CHECK(name == "error");
}

TEST_CASE("passed_phases reports the phases between two polls but not the current one", "[sse]") {
  auto span = [](const char* p) { return json{{"phase", p}, {"started", "t"}, {"ended", nullptr}}; };
  json res = {{"port", 4100}};
  json d = {{"phase", "queued"}, {"phases", {span("queued")}}};
  size_t seen = 0;
  CHECK(passed_phases(d, seen, res).empty());
  CHECK(seen == 1);

  d = {{"phase", "starting"},
       {"phases", {span("queued"), span("preparing"), span("building"), span("packaging"), span("starting")}}};
  auto passed = passed_phases(d, seen, res);
  REQUIRE(passed.size() == 3);
  CHECK(passed[0]["phase"] == "preparing");
  CHECK(passed[2] == json{{"phase", "packaging"},
                          {"status", "running"},
                          {"progress", berth::progress_of(berth::phase::packaging)},
                          {"message", "packaging"},
                          {"resources", res}});
  CHECK(seen == 5);
  CHECK(passed_phases(d, seen, res).empty());

  // Terminal without a span of its own: the last span was passed too.
  d["phase"] = "failed";
  d["phases"].push_back(span("rolling_back"));
  passed = passed_phases(d, seen, res);
  REQUIRE(passed.size() == 1);
  CHECK(passed[0]["phase"] == "rolling_back");
  CHECK(passed_phases(json::object(), seen, res).empty());
}
