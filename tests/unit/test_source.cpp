#include <catch2/catch.hpp>

#include "tests/unit/support.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/source.hpp"

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

  s = snapshot_source("", r, first, dest);  // a commit: --branch can't take it
  INFO(s.message());
  REQUIRE(s);
  CHECK(read_file(dest / "app.txt") == "v1");

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
}
