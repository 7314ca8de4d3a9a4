#include <catch2/catch.hpp>

#include "tests/unit/support.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fcntl.h>
#include <stdio.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "runtime/release/source.hpp"

using namespace berth;
namespace fs = std::filesystem;

using berth::test::mode_of;
using berth::test::read_file;
using berth::test::temp_dir;
using berth::test::write_file;

namespace {

// Test-only: runs a git command line (paths are mkdtemp names, no quoting needed).
std::string sh(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(f != nullptr);
  char buf[256];
  while (fgets(buf, sizeof buf, f)) out += buf;
  int rc = ::pclose(f);
  INFO(cmd << "\n" << out);
  REQUIRE(rc == 0);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

const std::string kGit = "git -c user.name=berth-test -c user.email=test@berth.invalid -c commit.gpgsign=false";

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("snapshot_source: local copy keeps modes and symlinks, skips .git", "[source]") {
  temp_dir t;
  fs::path src = t.path / "shop", dest = t.path / "data/preview/src";
  write_file(src / "package.json", "{}");
  write_file(src / "bin/start", "#!/bin/sh\necho hi\n", 0755);
  write_file(src / "private.key", "k", 0600);
  write_file(src / "node_modules/lib/index.js", "module.exports=1");
  write_file(src / ".git/HEAD", "ref: refs/heads/main\n");
  write_file(src / "sub/.git", "gitdir: ../.git/modules/sub\n");  // a submodule's .git file
  write_file(src / "sub/code.c", "int main(){}");
  fs::create_symlink("bin/start", src / "start-link");
  fs::create_symlink("/etc/hostname", src / "outside-link");  // copied as a link, never followed
  fs::create_directories(src / "empty");
  ::chmod((src / "sub").c_str(), 0750);
  ::mkfifo((src / "fifo").c_str(), 0644);
  // A previous snapshot with a stale file.
  write_file(dest / "stale.txt", "old");

  auto s = snapshot_source(src.string(), "", "", dest);
  INFO(s.message());
  REQUIRE(s);
  CHECK(!fs::exists(dest / "stale.txt"));
  CHECK(read_file(dest / "package.json") == "{}");
  CHECK(mode_of(dest / "bin/start") == 0755);
  CHECK(mode_of(dest / "private.key") == 0600);
  CHECK(mode_of(dest / "sub") == 0750);
  CHECK(read_file(dest / "node_modules/lib/index.js") == "module.exports=1");
  CHECK(!fs::exists(dest / ".git"));
  CHECK(!fs::exists(dest / "sub/.git"));
  CHECK(fs::exists(dest / "sub/code.c"));
  CHECK(fs::is_directory(dest / "empty"));
  CHECK(!fs::exists(fs::symlink_status(dest / "fifo")));
  REQUIRE(fs::is_symlink(dest / "start-link"));
  CHECK(fs::read_symlink(dest / "start-link") == "bin/start");
  REQUIRE(fs::is_symlink(dest / "outside-link"));
  CHECK(fs::read_symlink(dest / "outside-link") == "/etc/hostname");
  // Nothing but `src` next to dest: no temp or old folders left.
  CHECK(names_in(dest.parent_path()) == std::vector<std::string>{"src"});
}

TEST_CASE("snapshot_source: argument errors", "[source]") {
  temp_dir t;
  auto s = snapshot_source((t.path / "no-such-dir").string(), "", "", t.path / "dest");
  CHECK(s.which() == status::code::not_found);
  CHECK_THAT(s.message(), Catch::Contains("no-such-dir"));
  CHECK(!fs::exists(t.path / "dest"));

  CHECK(snapshot_source("", "", "", t.path / "dest").which() == status::code::invalid_argument);
  CHECK(snapshot_source(t.path.string(), "/some/repo", "main", t.path / "dest").which() ==
        status::code::invalid_argument);

  write_file(t.path / "src/a", "a");
  // dest inside the source, or the source inside dest (which would be wiped): refused.
  CHECK(snapshot_source((t.path / "src").string(), "", "", t.path / "src/copy").which() ==
        status::code::invalid_argument);
  CHECK(snapshot_source((t.path / "src").string(), "", "", t.path).which() == status::code::invalid_argument);
  CHECK(read_file(t.path / "src/a") == "a");
  write_file(t.path / "file", "x");
  CHECK(snapshot_source((t.path / "file").string(), "", "", t.path / "dest").which() ==
        status::code::invalid_argument);
}

TEST_CASE("snapshot_source: git clone of a branch, of a commit, and a bad ref", "[source]") {
  temp_dir t;
  fs::path repo = t.path / "repo", dest = t.path / "work/src";
  std::string r = repo.string();
  sh("git init -q -b main " + r);
  write_file(repo / "app.txt", "v1");
  write_file(repo / "run.sh", "#!/bin/sh\n", 0755);
  sh(kGit + " -C " + r + " add -A");
  sh(kGit + " -C " + r + " commit -q -m first");
  std::string first = sh("git -C " + r + " rev-parse HEAD");
  write_file(repo / "app.txt", "v2");
  sh(kGit + " -C " + r + " commit -q -am second");

  auto s = snapshot_source("", r, "main", dest);
  INFO(s.message());
  REQUIRE(s);
  CHECK(read_file(dest / "app.txt") == "v2");
  CHECK(mode_of(dest / "run.sh") == 0755);
  CHECK_FALSE(fs::exists(dest / ".git"));  // no history, no config (where a remote's URL would be)

  s = snapshot_source("", r, first, dest);  // a commit: --branch can't take it
  INFO(s.message());
  REQUIRE(s);
  CHECK(read_file(dest / "app.txt") == "v1");
  CHECK_FALSE(fs::exists(dest / ".git"));

  s = snapshot_source("", r, first.substr(0, 10), dest);  // abbreviated
  REQUIRE(s);
  CHECK(read_file(dest / "app.txt") == "v1");

  s = snapshot_source("", "file://" + r, "", dest);  // default branch
  REQUIRE(s);
  CHECK(read_file(dest / "app.txt") == "v2");

  s = snapshot_source("", r, "no-such-branch", dest);
  CHECK(!s);
  CHECK(s.which() == status::code::not_found);
  CHECK_THAT(s.message(), Catch::Contains("no-such-branch"));
  // The previous snapshot is still there, and no temp folder was left behind.
  CHECK(read_file(dest / "app.txt") == "v2");
  CHECK(names_in(dest.parent_path()) == std::vector<std::string>{"src"});

  CHECK(snapshot_source("", r, "--upload-pack=touch /tmp/pwned", dest).which() ==
        status::code::invalid_argument);
  s = snapshot_source("", (t.path / "not-a-repo").string(), "main", dest);
  CHECK(!s);
  CHECK(s.which() == status::code::io_error);
  CHECK_THAT(s.message(), Catch::Contains("not-a-repo"));
}

TEST_CASE("snapshot_source: credentials in a git url are masked in errors", "[source]") {
  temp_dir t;
  auto s = snapshot_source("", "file://user:hunter2@" + (t.path / "nothing").string(), "main",
                           t.path / "dest", std::chrono::seconds(20));
  CHECK(!s);
  CHECK_THAT(s.message(), !Catch::Contains("hunter2"));
  // The same masking, for whoever shows a git url (logs, answers).
  CHECK(mask_url_credentials("https://user:hunter2@git.example.com/shop.git") == "https://***@git.example.com/shop.git");
  CHECK(mask_url_credentials("https://hunter2@git.example.com/a@b") == "https://***@git.example.com/a@b");
  CHECK(mask_url_credentials("https://git.example.com/shop.git") == "https://git.example.com/shop.git");
  CHECK(mask_url_credentials("/srv/repos/shop") == "/srv/repos/shop");
}

namespace {

// Regular files under `root` (links not followed) whose bytes contain `needle`.
std::vector<std::string> files_containing(const fs::path& root, const std::string& needle) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(root, ec))) return out;
  fs::recursive_directory_iterator it(root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it->is_symlink(ec)) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && read_file(it->path()).find(needle) != std::string::npos)
      out.push_back(it->path().string());
  }
  return out;
}

}  // namespace

TEST_CASE("snapshot_source: links leading outside stay links and absolute links inside become relative",
          "[source]") {
  temp_dir t;
  fs::path src = t.path / "shop", outside = t.path / "outside", dest = t.path / "data/builds/shop.7";
  write_file(outside / "marker.txt", "outside-marker");
  write_file(outside / "sub/more.txt", "outside-marker again");
  write_file(src / "a.txt", "a");
  write_file(src / "nested/b.txt", "b");
  fs::create_directory_symlink(outside, src / "dir-link");           // a folder outside
  fs::create_symlink("../outside/marker.txt", src / "rel-out");       // relative, leaving
  fs::create_symlink("/etc/passwd", src / "passwd");                  // a system file
  fs::create_symlink(src / "a.txt", src / "abs-in");                  // absolute, inside
  fs::create_symlink(src / "a.txt", src / "nested/abs-up");           // absolute, inside, from below
  fs::create_symlink(src / "nested", src / "abs-dir");                // absolute, a folder inside
  fs::create_symlink(src, src / "nested/abs-root");                   // absolute, the root itself
  fs::create_directory_symlink(src, t.path / "alias");                // the source through a link
  fs::create_symlink(t.path / "alias/nested/b.txt", src / "abs-via-alias");

  auto s = snapshot_source((t.path / "alias").string(), "", "", dest);
  INFO(s.message());
  REQUIRE(s);
  CHECK(fs::read_symlink(dest / "dir-link") == outside);
  CHECK(fs::read_symlink(dest / "rel-out") == "../outside/marker.txt");
  CHECK(fs::read_symlink(dest / "passwd") == "/etc/passwd");
  CHECK(fs::read_symlink(dest / "abs-in") == "a.txt");
  CHECK(fs::read_symlink(dest / "nested/abs-up") == "../a.txt");
  CHECK(fs::read_symlink(dest / "abs-dir") == "nested");
  CHECK(fs::read_symlink(dest / "nested/abs-root") == "..");
  CHECK(fs::read_symlink(dest / "abs-via-alias") == "nested/b.txt");
  // The rewritten links lead to the copy's own files.
  CHECK(read_file(dest / "abs-in") == "a");
  CHECK(read_file(dest / "abs-via-alias") == "b");
  CHECK(fs::equivalent(dest / "nested/abs-root", dest));
  // Nothing from outside was copied, and outside is as it was.
  CHECK(files_containing(dest, "outside-marker").empty());
  CHECK(files_containing(dest, "root:").empty());
  CHECK(names_in(outside) == std::vector<std::string>{"marker.txt", "sub"});
  CHECK(read_file(outside / "marker.txt") == "outside-marker");
  // Replacing the snapshot (and removing the old one) never follows the links either.
  write_file(src / "a.txt", "a2");
  REQUIRE(snapshot_source(src.string(), "", "", dest));
  CHECK(read_file(dest / "abs-in") == "a2");
  CHECK(read_file(outside / "marker.txt") == "outside-marker");
  CHECK(read_file(outside / "sub/more.txt") == "outside-marker again");
}

TEST_CASE("snapshot_source: a folder swapped for a link to outside while the copy runs is never followed",
          "[source]") {
  // A process in the source tree exchanges `d` (a real folder) and `e` (a link to a folder
  // outside) as fast as it can while snapshots are taken. A snapshot may fail (the tree
  // changed under it) but must never contain a file from outside.
  temp_dir t;
  fs::path src = t.path / "src", outside = t.path / "outside", dest = t.path / "data/src";
  for (int i = 0; i < 3; ++i) write_file(outside / ("f" + std::to_string(i)), "outside-marker");
  for (int i = 0; i < 3; ++i) write_file(src / "d" / ("g" + std::to_string(i)), "inside");
  fs::create_directory_symlink(outside, src / "e");
  write_file(src / "z.txt", "z");

  std::atomic<bool> stop{false};
  std::atomic<long> swaps{0};
  std::thread swapper([&] {
    while (!stop.load()) {
      if (::renameat2(AT_FDCWD, (src / "d").c_str(), AT_FDCWD, (src / "e").c_str(), RENAME_EXCHANGE) == 0)
        swaps.fetch_add(1);
    }
  });
  int ok = 0, refused = 0;
  std::vector<std::string> leaked;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < until && leaked.empty()) {
    auto s = snapshot_source(src.string(), "", "", dest);
    if (s) {
      ++ok;
      leaked = files_containing(dest, "outside-marker");
    } else {
      ++refused;
      INFO(s.message());
      CHECK_THAT(s.message(), Catch::Contains("changed"));
    }
  }
  stop.store(true);
  swapper.join();
  std::string shown;
  for (auto& l : leaked) shown += "\n  " + l;
  INFO(ok << " snapshots, " << refused << " refused, " << swaps.load() << " swaps; leaked:" << shown);
  CHECK(swaps.load() > 100);
  CHECK(ok > 0);
  CHECK(leaked.empty());
  // Outside is untouched; no temp folders are left next to dest.
  CHECK(files_containing(outside, "outside-marker").size() == 3);
  CHECK(names_in(dest.parent_path()) == std::vector<std::string>{"src"});
}
