// package_build: releases that hard-link what has not changed from the previous release and do
// not re-read what the snapshot proves unchanged, with the release hash of hash_artifacts.
#include <catch2/catch.hpp>

#include "tests/unit/support.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "runtime/release/package_build.hpp"
#include "runtime/release/release.hpp"
#include "runtime/release/source.hpp"

using namespace berth;
namespace fs = std::filesystem;

using berth::test::read_file;
using berth::test::temp_dir;
using berth::test::write_file;

namespace {

// A project's folders: its source, its build workspaces and its releases.
struct project {
  temp_dir dir{"reuse"};
  fs::path src = dir.path / "src", builds = dir.path / "builds", releases = dir.path / "production";
  int deploys = 0;

  // Files written just now are never trusted by their metadata (one clock tick): let it pass, as
  // any real edit-then-deploy does.
  static void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(60)); }

  // preparing + packaging, as a deploy does them; the build dir is then deleted as tidy does.
  package_report deploy(bool keep_build = false, const std::function<void(const fs::path&)>& build = {}) {
    fs::path ws = builds / std::to_string(++deploys);
    snapshot_record rec;
    auto s = snapshot_source(src.string(), "", "", ws, default_git_timeout, "", &rec);
    INFO(s.message());
    REQUIRE(s);
    if (build) build(ws);
    package_report r;
    s = package_build(ws, {"."}, &rec, releases, [](const std::string&) { return true; }, &r);
    INFO(s.message());
    REQUIRE(s);
    std::string expected;
    REQUIRE(hash_artifacts(ws, {"."}, &expected));
    CHECK(r.hash == expected);  // the same definition: same content, same hash as before reuse
    if (!keep_build) fs::remove_all(ws);
    return r;
  }
};

ino_t inode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_ino;
}

std::string sized(char c, size_t n) { return std::string(n, c); }

}  // namespace

TEST_CASE("package_build: unchanged files are hard links of the previous release, a changed one is new",
          "[release][reuse]") {
  project p;
  write_file(p.src / "node_modules/left/index.js", "module.exports = 1;\n");
  write_file(p.src / "node_modules/left/big.bin", sized('x', 1500000));
  write_file(p.src / "node_modules/zed/run", "#!/bin/sh\n", 0755);
  write_file(p.src / "server.js", "console.log('v1')\n");
  project::settle();
  auto first = p.deploy();
  CHECK(first.created);
  CHECK(first.linked == 0);

  write_file(p.src / "server.js", "console.log('v2!')\n");
  project::settle();
  auto second = p.deploy();
  REQUIRE(second.created);
  REQUIRE(second.hash != first.hash);
  auto r1 = p.releases / first.hash, r2 = p.releases / second.hash;
  for (auto rel : {"node_modules/left/index.js", "node_modules/left/big.bin", "node_modules/zed/run"})
    CHECK(inode_of(r1 / rel) == inode_of(r2 / rel));
  CHECK(second.linked == 3);
  CHECK(second.unread >= 1);  // big.bin: before the last checkpoint, neither read nor copied
  CHECK(second.bytes_read < 1000);
  CHECK(inode_of(r1 / "server.js") != inode_of(r2 / "server.js"));
  CHECK(read_file(r2 / "server.js") == "console.log('v2!')\n");
  CHECK(read_file(r1 / "server.js") == "console.log('v1')\n");
  CHECK(berth::test::mode_of(r2 / "node_modules/zed/run") == 0755);

  // A third deploy with nothing changed: the hash is known without reading a byte.
  auto same = p.deploy();
  CHECK(same.hash == second.hash);
  CHECK_FALSE(same.created);
  CHECK(same.bytes_read == 0);

  // Retention removes the older release: the newer one keeps every shared file, intact.
  REQUIRE(switch_current(p.releases, second.hash));
  REQUIRE(remove_release(p.releases, first.hash));
  CHECK(read_file(r2 / "node_modules/left/big.bin") == sized('x', 1500000));
  CHECK(read_file(r2 / "node_modules/left/index.js") == "module.exports = 1;\n");
  std::string rehash;
  REQUIRE(hash_artifacts(r2, {"."}, &rehash));
  CHECK(rehash == second.hash);

  // The next release links from the newer one, which now owns the shared inodes alone.
  write_file(p.src / "server.js", "console.log('v3')\n");
  project::settle();
  auto third = p.deploy();
  CHECK(third.created);
  CHECK(inode_of(p.releases / third.hash / "node_modules/left/big.bin") == inode_of(r2 / "node_modules/left/big.bin"));
}

TEST_CASE("package_build: a file changed in the tree is re-read and gets a new inode", "[release][reuse]") {
  project p;
  for (int i = 0; i < 40; ++i)
    write_file(p.src / "node_modules" / ("f" + std::to_string(100 + i)), sized('a' + i % 26, 5000 + i));
  project::settle();
  auto first = p.deploy();
  write_file(p.src / "node_modules/f120", sized('Q', 5020));  // same size, other bytes
  project::settle();
  auto second = p.deploy();
  REQUIRE(second.hash != first.hash);
  auto r1 = p.releases / first.hash, r2 = p.releases / second.hash;
  CHECK(inode_of(r1 / "node_modules/f120") != inode_of(r2 / "node_modules/f120"));
  CHECK(read_file(r2 / "node_modules/f120") == sized('Q', 5020));
  CHECK(inode_of(r1 / "node_modules/f139") == inode_of(r2 / "node_modules/f139"));
  CHECK(inode_of(r1 / "node_modules/f100") == inode_of(r2 / "node_modules/f100"));
  CHECK(second.linked == 39);
  CHECK(second.copied == 1);
}

TEST_CASE("package_build: the cache never gives a stale hash when bytes change with the same size or mtime",
          "[release][reuse]") {
  project p;
  write_file(p.src / "lib/a.js", "aaaa-one\n");
  write_file(p.src / "lib/b.js", "bbbb-one\n");
  project::settle();
  p.deploy();
  auto mtime = fs::last_write_time(p.src / "lib/a.js");

  SECTION("same size, mtime set back") {  // as npm's fixed 1985 dates do
    write_file(p.src / "lib/a.js", "aaaa-two\n");
    fs::last_write_time(p.src / "lib/a.js", mtime);
  }
  SECTION("another size") { write_file(p.src / "lib/a.js", "aaaa-longer\n"); }
  SECTION("the build rewrites its copy in place, same size, mtime kept") {}
  project::settle();
  auto r = p.deploy(false, [&](const fs::path& ws) {
    if (read_file(p.src / "lib/a.js") != "aaaa-one\n") return;
    auto copy_mtime = fs::last_write_time(ws / "lib/a.js");
    write_file(ws / "lib/a.js", "aaaa-BLD\n");
    fs::last_write_time(ws / "lib/a.js", copy_mtime);
  });
  // deploy() checked r.hash == hash_artifacts of what was built; the release holds those bytes.
  auto got = read_file(p.releases / r.hash / "lib/a.js");
  CHECK(got != "aaaa-one\n");
  CHECK(read_file(p.releases / r.hash / "lib/b.js") == "bbbb-one\n");
}

TEST_CASE("package_build: editing the source or the build dir after a deploy never changes a release",
          "[release][reuse]") {
  project p;
  write_file(p.src / "app.js", "served-v1\n");
  write_file(p.src / "data/big", sized('d', 100000));
  project::settle();
  auto first = p.deploy(/*keep_build=*/true);
  auto rel = p.releases / first.hash;
  CHECK(inode_of(rel / "app.js") != inode_of(p.src / "app.js"));  // never a link into the source
  CHECK(inode_of(rel / "app.js") != inode_of(p.builds / "1/app.js"));  // nor into the build dir
  write_file(p.src / "app.js", "EDITED-v\n");  // same size, in place
  write_file(p.builds / "1/app.js", "BUILD-ED\n");
  CHECK(read_file(rel / "app.js") == "served-v1\n");
  fs::remove_all(p.builds);
  CHECK(read_file(rel / "data/big") == sized('d', 100000));
  // The next deploy sees the edit (its hash changes) and still links the unchanged file.
  project::settle();
  auto second = p.deploy();
  CHECK(read_file(p.releases / second.hash / "app.js") == "EDITED-v\n");
  CHECK(inode_of(p.releases / second.hash / "data/big") == inode_of(rel / "data/big"));
}

TEST_CASE("package_build: without a snapshot record (a git source) identical files are read, then linked",
          "[release][reuse]") {
  temp_dir dir("reuse");
  auto build = dir.path / "build", releases = dir.path / "production";
  write_file(build / "keep.bin", sized('k', 70000));
  write_file(build / "app.js", "one\n");
  package_report a, b;
  auto all = [](const std::string&) { return true; };
  REQUIRE(package_build(build, {"."}, nullptr, releases, all, &a));
  write_file(build / "app.js", "two\n");
  REQUIRE(package_build(build, {"."}, nullptr, releases, all, &b));
  CHECK(b.bytes_read >= 70000);
  CHECK(inode_of(releases / a.hash / "keep.bin") == inode_of(releases / b.hash / "keep.bin"));
  CHECK(read_file(releases / b.hash / "app.js") == "two\n");
  std::string h;
  REQUIRE(hash_artifacts(build, {"."}, &h));
  CHECK(h == b.hash);
}
