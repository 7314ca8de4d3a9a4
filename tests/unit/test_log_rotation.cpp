// Unit tests for runtime/logs/rotating_file (what `berth log-writer` runs) and for
// process_driver::tail across a rotation.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>
#include <string>

#include <catch2/catch.hpp>

#include "runtime/logs/rotating_file.hpp"
#include "runtime/pipeline/deploy_log.hpp"
#include "runtime/process/process_driver.hpp"

namespace fs = std::filesystem;
using berth::log_rotation;
using berth::rotating_file;

namespace {

struct scratch {
  std::string dir;
  scratch() {
    char tmpl[] = "/tmp/berth-rotation-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string numbered(int from, int to) {
  std::string out;
  for (int i = from; i < to; ++i) out += "line " + std::to_string(i) + "\n";
  return out;
}

}  // namespace

TEST_CASE("log rotation - files stay under the limit, whole lines, oldest dropped", "[log_rotation][containment]") {
  scratch s;
  auto path = s.dir + "/app.log";
  rotating_file f(path, log_rotation{100, 3});
  REQUIRE(f.open().is_ok());
  // Written in uneven chunks, as a pipe delivers them.
  auto text = numbered(0, 200);
  for (size_t at = 0; at < text.size(); at += 37) REQUIRE(f.write(text.data() + at, std::min<size_t>(37, text.size() - at)).is_ok());
  for (auto* suffix : {"", ".1", ".2"}) {
    auto content = read_all(path + suffix);
    INFO(suffix);
    CHECK(content.size() <= 100);
    CHECK(!content.empty());
  }
  CHECK(!fs::exists(path + ".3"));
  // The three files, oldest first, are the end of what was written, with no line cut.
  auto kept = read_all(path + ".2") + read_all(path + ".1") + read_all(path);
  CHECK(text.size() >= kept.size());
  CHECK(text.compare(text.size() - kept.size(), kept.size(), kept) == 0);
  CHECK(kept.rfind("line 199\n") == kept.size() - 9);
  CHECK(read_all(path + ".2").rfind("line ", 0) == 0);
}

TEST_CASE("log rotation - a line longer than a file is split, rotation 0 appends for ever", "[log_rotation][containment]") {
  scratch s;
  auto path = s.dir + "/app.log";
  {
    rotating_file f(path, log_rotation{10, 2});
    std::string longline(25, 'x');
    REQUIRE(f.write(longline.data(), longline.size()).is_ok());
    CHECK(read_all(path).size() <= 10);
    CHECK(read_all(path + ".1").size() <= 10);
  }
  auto plain = s.dir + "/plain.log";
  rotating_file g(plain, log_rotation{0, 2});
  auto text = numbered(0, 100);
  REQUIRE(g.write(text.data(), text.size()).is_ok());
  CHECK(read_all(plain) == text);
  CHECK(!fs::exists(plain + ".1"));
}

TEST_CASE("log rotation - tail reads across the rotation boundary", "[log_rotation][containment]") {
  scratch s;
  auto path = s.dir + "/app.log";
  rotating_file f(path, log_rotation{60, 5});
  auto text = numbered(0, 30);
  REQUIRE(f.write(text.data(), text.size()).is_ok());
  REQUIRE(fs::exists(path + ".1"));
  auto last = berth::process_driver::tail(path, 12);
  REQUIRE(last.size() == 12);
  CHECK(last.front() == "line 18");
  CHECK(last.back() == "line 29");
  // Just after a rotation the current file is empty: the lines come from the older ones.
  auto line = std::string("line 30\n");
  rotating_file g(s.dir + "/b.log", log_rotation{8, 3});
  REQUIRE(g.write(line.data(), line.size()).is_ok());
  auto second = std::string("line 31\n");
  REQUIRE(g.write(second.data(), second.size()).is_ok());
  auto both = berth::process_driver::tail(s.dir + "/b.log", 5);
  CHECK(both == std::vector<std::string>{"line 30", "line 31"});
}

TEST_CASE("log rotation - a deployment's log rotates like the apps' and keeps its newest lines",
          "[log_rotation][containment]") {
  scratch s;
  auto before = berth::app_log_rotation();
  berth::set_app_log_rotation({2048, 3});
  auto path = s.dir + "/deploy-site.7.log";
  {
    berth::deploy_log log(path);
    std::vector<std::string> lines;
    for (int i = 0; i < 1000; ++i) lines.push_back("build line " + std::to_string(i) + " of a build that prints a lot");
    log.build_output(lines);
    for (int i = 0; i < 200; ++i) log.line("berth line " + std::to_string(i));
  }
  berth::set_app_log_rotation(before);
  uintmax_t total = 0;
  for (int i = 0; i < 3; ++i) {
    auto f = berth::rotated_name(path, i);
    REQUIRE(fs::exists(f));
    CHECK(fs::file_size(f) <= 2048);
    total += fs::file_size(f);
  }
  CHECK_FALSE(fs::exists(berth::rotated_name(path, 3)));  // at most 3 files
  CHECK(total > 4096);                                     // not one file truncated for ever
  auto tail = berth::process_driver::tail(path, 3);
  REQUIRE(tail.size() == 3);
  CHECK(tail.back().find("berth: berth line 199") != std::string::npos);
}
