// Unit tests for runtime/logs/rotated_log (reading a rotated log by logical offset) and
// runtime/logs/log_watcher (the one inotify thread that wakes log followers).
#include <atomic>
#include <filesystem>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "runtime/logs/log_watcher.hpp"
#include "runtime/logs/rotated_log.hpp"
#include "runtime/logs/rotating_file.hpp"
#include "tests/unit/support.hpp"

using namespace berth;
using berth::test::temp_dir;
using namespace std::chrono_literals;

namespace {

// "line 0000\n" … : 10 bytes each, so line i starts at logical offset 10 * i.
std::string numbered(int from, int to) {
  std::string out;
  for (int i = from; i < to; ++i) {
    auto n = std::to_string(i);
    out += "line " + std::string(4 - n.size(), '0') + n + "\n";
  }
  return out;
}

std::string read_everything(const log_snapshot& snap, uint64_t from) {
  return snap.read(from, static_cast<size_t>(snap.end() - std::min(from, snap.end())));
}

}  // namespace

TEST_CASE("rotated log - logical offsets across several rotations, oldest kept byte, past the end",
          "[rotated_log]") {
  temp_dir tmp{"berth-rlog"};
  auto path = tmp / "app.log";
  rotating_file f(path, log_rotation{100, 3});  // 10 lines a file, 3 files: 30 lines kept
  REQUIRE(f.open().is_ok());
  auto text = numbered(0, 95);  // 9.5 files' worth: rotated 9 times
  for (size_t at = 0; at < text.size(); at += 37) REQUIRE(f.write(text.data() + at, std::min<size_t>(37, text.size() - at)).is_ok());

  auto snap = log_snapshot::take(path);
  CHECK(snap.files() == 3);
  CHECK(snap.end() == 950);
  CHECK(snap.oldest() == 700);  // lines 70..94 are kept: PATH.2 (70-79), PATH.1 (80-89), PATH (90-94)
  auto base = read_log_base(path);
  REQUIRE(base);
  CHECK(base->offset == 900);

  // Every kept offset maps to the right file and position; the bytes read are the written ones.
  CHECK(snap.file_position(700) == std::make_pair(size_t{0}, uint64_t{0}));  // the oldest kept byte
  CHECK(snap.file_position(799) == std::make_pair(size_t{0}, uint64_t{99}));
  CHECK(snap.file_position(800) == std::make_pair(size_t{1}, uint64_t{0}));
  CHECK(snap.file_position(949) == std::make_pair(size_t{2}, uint64_t{49}));
  CHECK(snap.locate(699) == log_snapshot::place::before);
  CHECK(snap.locate(700) == log_snapshot::place::inside);
  CHECK(snap.locate(950) == log_snapshot::place::at_end);
  CHECK(snap.locate(951) == log_snapshot::place::past);
  CHECK_FALSE(snap.file_position(950));
  CHECK(read_everything(snap, 700) == numbered(70, 95));
  CHECK(snap.read(790, 30) == "line 0079\nline 0080\nline 0081\n");  // across a file boundary
  CHECK(snap.read(0, 10) == "line 0070\n");  // a lost offset reads from the oldest kept byte
  CHECK(snap.read(950, 10).empty());

  // Lines in chunks: complete lines only, and the offsets they cover.
  auto chunk = read_lines(snap, 700, 25);
  CHECK(chunk.lines == std::vector<std::string>{"line 0070", "line 0071"});
  CHECK(chunk.consumed == 20);

  // The tail: where the last N complete lines start.
  CHECK(snap.tail_start(3) == 920);
  CHECK(snap.tail_start(0) == 950);
  CHECK(snap.tail_start(1000) == 700);  // fewer lines kept than asked

  // More writing: offsets keep counting; an old snapshot still reads what it saw.
  auto more = numbered(95, 130);
  REQUIRE(f.write(more.data(), more.size()).is_ok());
  auto later = log_snapshot::take(path);
  CHECK(later.end() == 1300);
  CHECK(later.oldest() == 1000);
  CHECK(read_everything(later, 1000) == numbered(100, 130));
  CHECK(read_everything(snap, 900) == numbered(90, 95));
}

TEST_CASE("rotated log - an unfinished line waits; a restarted writer keeps counting", "[rotated_log]") {
  temp_dir tmp{"berth-rlog"};
  auto path = tmp / "app.log";
  {
    rotating_file f(path, log_rotation{100, 5});
    REQUIRE(f.open().is_ok());
    std::string part = numbered(0, 15) + "unfinish";
    REQUIRE(f.write(part.data(), part.size()).is_ok());
  }
  auto snap = log_snapshot::take(path);
  CHECK(snap.end() == 158);
  auto chunk = read_lines(snap, 150);
  CHECK(chunk.consumed == 0);  // no newline yet: nothing to send
  CHECK(snap.tail_start(2) == 130);

  rotating_file again(path, log_rotation{100, 5});  // the app restarted: a new log-writer (rotates twice)
  REQUIRE(again.open().is_ok());
  std::string rest = "ed\n" + numbered(16, 30);
  REQUIRE(again.write(rest.data(), rest.size()).is_ok());
  auto now = log_snapshot::take(path);
  CHECK(now.end() == 158 + rest.size());
  auto line = read_lines(now, 150, 64);
  REQUIRE_FALSE(line.lines.empty());
  CHECK(line.lines.front() == "unfinished");
  CHECK(now.read(now.end() - 10, 10) == "line 0029\n");
  CHECK(now.files() == 4);
  CHECK(read_everything(now, 0) == numbered(0, 15) + "unfinished\n" + numbered(16, 30));
}

TEST_CASE("rotated log - a log without sidecar counts from its oldest file; missing log is empty",
          "[rotated_log]") {
  temp_dir tmp{"berth-rlog"};
  auto path = tmp / "old.log";
  test::write_file(path + ".1", numbered(0, 3));
  test::write_file(path, numbered(3, 5));
  auto snap = log_snapshot::take(path);
  CHECK(snap.oldest() == 0);
  CHECK(snap.end() == 50);
  CHECK(read_everything(snap, 0) == numbered(0, 5));

  auto none = log_snapshot::take(tmp / "none.log");
  CHECK(none.end() == 0);
  CHECK(none.oldest() == 0);
  CHECK(none.locate(0) == log_snapshot::place::at_end);
  CHECK(none.locate(1) == log_snapshot::place::past);

  remove_rotated_log(path);
  CHECK_FALSE(rotated_log_exists(path));
}

TEST_CASE("rotated log - a reader racing a rotating writer always sees each byte at its offset",
          "[rotated_log]") {
  temp_dir tmp{"berth-rlog"};
  auto path = tmp / "race.log";
  rotating_file f(path, log_rotation{200, 4});
  REQUIRE(f.open().is_ok());
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 3000; ++i) {
      auto line = numbered(i % 10000, i % 10000 + 1);
      (void)f.write(line.data(), line.size());
    }
    done = true;
  });
  int checked = 0, bad = 0;
  while (!done) {
    auto snap = log_snapshot::take(path);
    if (snap.end() == snap.oldest()) continue;
    // Line i sits at offset 10 * i, wherever rotation put it.
    auto from = snap.oldest();
    auto text = read_everything(snap, from);  // every kept file, the oldest to the newest
    for (size_t at = 0; at + 10 <= text.size(); at += 10) {
      ++checked;
      if (text.substr(at, 10) != numbered(static_cast<int>((from + at) / 10), static_cast<int>((from + at) / 10) + 1)) ++bad;
    }
  }
  writer.join();
  CHECK(checked > 0);
  CHECK(bad == 0);
}

TEST_CASE("log watcher - a follower is woken when its log is written or rotated, not by others",
          "[rotated_log]") {
  temp_dir tmp{"berth-rlog"};
  auto path = tmp / "w.log";
  auto sig = log_watcher::instance().watch(path);
  REQUIRE(log_watcher::instance().valid(*sig));
  auto other = log_watcher::instance().watch(tmp / "other.log");
  rotating_file f(path, log_rotation{20, 2});
  REQUIRE(f.open().is_ok());
  REQUIRE(sig->wait(5s));  // created
  while (sig->wait(200ms)) {
  }
  std::string line = "hello there\n";
  REQUIRE(f.write(line.data(), line.size()).is_ok());
  CHECK(sig->wait(5s));
  REQUIRE(f.write(line.data(), line.size()).is_ok());  // rotates
  CHECK(sig->wait(5s));
  CHECK_FALSE(other->wait(200ms));  // w.log's changes are not other.log's
  auto folders = log_watcher::instance().watched_folders();
  other.reset();
  CHECK(log_watcher::instance().watched_folders() == folders);  // sig still watches the folder
  sig.reset();
  CHECK(log_watcher::instance().watched_folders() == folders - 1);
}
