#include <catch2/catch.hpp>

#include "tests/unit/support.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "runtime/release/release.hpp"

using namespace berth;
namespace fs = std::filesystem;

using berth::test::mode_of;
using berth::test::read_file;
using berth::test::temp_dir;
using berth::test::write_file;

namespace {

// A small build output; `reverse` creates the files in the opposite order.
void make_build(const fs::path& root, bool reverse = false) {
  std::vector<std::function<void()>> steps = {
      [&] { write_file(root / "dist/index.html", "<html>hi</html>"); },
      [&] { write_file(root / "dist/js/app.js", "console.log(1)"); },
      [&] { write_file(root / "dist/bin/run", "#!/bin/sh\necho run\n", 0755); },
      [&] { write_file(root / "package.json", "{\"name\":\"shop\"}"); },
      [&] { write_file(root / "not-an-artifact.txt", "ignored"); },
  };
  if (reverse) std::reverse(steps.begin(), steps.end());
  for (auto& s : steps) s();
}

std::string hash_of(const fs::path& root, const std::vector<std::string>& artifacts) {
  std::string h;
  auto s = hash_artifacts(root, artifacts, &h);
  INFO(s.message());
  REQUIRE(s);
  return h;
}

const std::vector<std::string> kArtifacts = {"dist", "package.json"};

}  // namespace

TEST_CASE("release hash: same content gives the same hash, any change changes it", "[release]") {
  temp_dir a, b;
  make_build(a.path);
  make_build(b.path, /*reverse=*/true);
  fs::last_write_time(b.path / "dist/js/app.js", fs::file_time_type::clock::now() - std::chrono::hours(48));

  std::string h = hash_of(a.path, kArtifacts);
  CHECK(h.size() == 12);
  CHECK(valid_release_hash(h));
  CHECK(hash_of(b.path, kArtifacts) == h);
  CHECK(hash_of(b.path, {"package.json", "dist/", "dist/js"}) == h);  // order and overlaps

  SECTION("a changed byte") {
    write_file(b.path / "dist/js/app.js", "console.log(2)");
    CHECK(hash_of(b.path, kArtifacts) != h);
  }
  SECTION("a renamed file") {
    fs::rename(b.path / "dist/js/app.js", b.path / "dist/js/app2.js");
    CHECK(hash_of(b.path, kArtifacts) != h);
  }
  SECTION("chmod +x") {
    ::chmod((b.path / "dist/index.html").c_str(), 0755);
    CHECK(hash_of(b.path, kArtifacts) != h);
  }
  SECTION("a file outside the artifacts does not matter") {
    write_file(b.path / "not-an-artifact.txt", "changed");
    CHECK(hash_of(b.path, kArtifacts) == h);
  }
  SECTION("an empty directory is part of the release") {
    fs::create_directories(b.path / "dist/empty");
    CHECK(hash_of(b.path, kArtifacts) != h);
  }
}

TEST_CASE("release hash: the encoding is unambiguous", "[release]") {
  temp_dir a, b;
  write_file(a.path / "d/ab", "c");
  write_file(b.path / "d/a", "bc");
  CHECK(hash_of(a.path, {"d"}) != hash_of(b.path, {"d"}));
  temp_dir c, d;
  write_file(c.path / "d/x", "12");
  write_file(c.path / "d/y", "3");
  write_file(d.path / "d/x", "1");
  write_file(d.path / "d/y", "23");
  CHECK(hash_of(c.path, {"d"}) != hash_of(d.path, {"d"}));
}

TEST_CASE("release hash: symlinks inside are links, symlinks leaving the build dir are refused",
          "[release]") {
  temp_dir outside, t;
  write_file(outside.path / "secret", "s3cret");
  make_build(t.path);
  std::string base = hash_of(t.path, kArtifacts);

  SECTION("a link inside the build dir is hashed as a link, by target") {
    fs::create_symlink("js/app.js", t.path / "dist/app.js");
    std::string h1 = hash_of(t.path, kArtifacts);
    CHECK(h1 != base);
    fs::remove(t.path / "dist/app.js");
    fs::create_symlink("index.html", t.path / "dist/app.js");
    CHECK(hash_of(t.path, kArtifacts) != h1);
  }
  SECTION("absolute link into the build dir is fine") {
    fs::create_symlink(t.path / "package.json", t.path / "dist/pkg");
    CHECK(hash_artifacts(t.path, kArtifacts, &base));
  }
  SECTION("absolute link inside an artifact dir pointing outside") {
    fs::create_symlink(outside.path / "secret", t.path / "dist/js/evil");
    std::string h;
    auto s = hash_artifacts(t.path, kArtifacts, &h);
    CHECK(s.which() == status::code::invalid_argument);
    CHECK_THAT(s.message(), Catch::Contains("dist/js/evil"));
  }
  SECTION("relative link escaping with ..") {
    fs::create_symlink("../../../../../../../../etc/passwd", t.path / "dist/evil");
    std::string h;
    auto s = hash_artifacts(t.path, kArtifacts, &h);
    CHECK(s.which() == status::code::invalid_argument);
    CHECK_THAT(s.message(), Catch::Contains("dist/evil"));
  }
  SECTION("an artifact that is itself a link to outside") {
    fs::create_directory_symlink(outside.path, t.path / "assets");
    std::string h;
    auto s = hash_artifacts(t.path, {"dist", "assets"}, &h);
    CHECK(s.which() == status::code::invalid_argument);
    CHECK_THAT(s.message(), Catch::Contains("assets"));
  }
  SECTION("an artifact below a link to outside") {
    fs::create_directory_symlink(outside.path, t.path / "ext");
    std::string h;
    auto s = hash_artifacts(t.path, {"ext/secret"}, &h);
    CHECK(s.which() == status::code::invalid_argument);
    CHECK_THAT(s.message(), Catch::Contains("ext"));
  }
  SECTION("a link through another link to outside") {
    fs::create_directory_symlink(outside.path, t.path / "out");   // not an artifact itself
    fs::create_symlink("../out/secret", t.path / "dist/sneaky");  // looks inside, is not
    std::string h;
    auto s = hash_artifacts(t.path, kArtifacts, &h);
    CHECK(s.which() == status::code::invalid_argument);
    CHECK_THAT(s.message(), Catch::Contains("dist/sneaky"));
  }
}

TEST_CASE("release hash: missing and malformed artifacts", "[release]") {
  temp_dir t;
  make_build(t.path);
  std::string h;
  auto s = hash_artifacts(t.path, {"dist", "build/server.js"}, &h);
  CHECK(s.which() == status::code::not_found);
  CHECK_THAT(s.message(), Catch::Contains("build/server.js"));
  s = hash_artifacts(t.path, {"nope"}, &h);
  CHECK(s.which() == status::code::not_found);
  CHECK_THAT(s.message(), Catch::Contains("nope"));
  CHECK(hash_artifacts(t.path, {"../x"}, &h).which() == status::code::invalid_argument);
  CHECK(hash_artifacts(t.path, {"/etc"}, &h).which() == status::code::invalid_argument);
  CHECK(hash_artifacts(t.path, {""}, &h).which() == status::code::invalid_argument);
  CHECK(hash_artifacts(t.path / "missing", {"dist"}, &h).which() == status::code::not_found);
  ::mkfifo((t.path / "dist/fifo").c_str(), 0644);
  s = hash_artifacts(t.path, {"dist"}, &h);
  CHECK(s.which() == status::code::invalid_argument);
  CHECK_THAT(s.message(), Catch::Contains("dist/fifo"));
}

TEST_CASE("package_release: a faithful, immutable, content-addressed copy", "[release]") {
  temp_dir t, r;
  make_build(t.path);
  fs::create_symlink("js/app.js", t.path / "dist/main.js");
  fs::create_symlink(t.path / "package.json", t.path / "dist/pkg");  // absolute, inside
  fs::create_directories(t.path / "dist/static/empty");
  write_file(t.path / "dist/static/logo.svg", "<svg/>", 0600);
  ::chmod((t.path / "dist/static").c_str(), 0555);
  std::vector<std::string> artifacts = {"dist", "package.json"};
  std::string h = hash_of(t.path, artifacts);
  fs::path releases = r.path / "production";

  fs::path out;
  auto s = package_release(t.path, artifacts, releases, h, &out);
  INFO(s.message());
  REQUIRE(s);
  CHECK(out == releases / h);
  CHECK(read_file(out / "dist/index.html") == "<html>hi</html>");
  CHECK(read_file(out / "package.json") == "{\"name\":\"shop\"}");
  CHECK(mode_of(out / "dist/bin/run") == 0755);
  CHECK(mode_of(out / "dist/static/logo.svg") == 0600);
  CHECK(mode_of(out / "dist/static") == 0555);
  CHECK(fs::is_directory(out / "dist/static/empty"));
  CHECK(!fs::exists(out / "not-an-artifact.txt"));
  REQUIRE(fs::is_symlink(out / "dist/main.js"));
  CHECK(fs::read_symlink(out / "dist/main.js") == "js/app.js");
  CHECK(read_file(out / "dist/main.js") == "console.log(1)");
  REQUIRE(fs::is_symlink(out / "dist/pkg"));
  CHECK(fs::read_symlink(out / "dist/pkg") == "../package.json");  // never back into the build dir
  // The release hashes to its own name.
  CHECK(hash_of(out, artifacts) == h);
  // Nothing else was left in the releases dir.
  int entries = 0;
  for (auto& e : fs::directory_iterator(releases)) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);

  SECTION("packaging the same hash again leaves it untouched") {
    write_file(out / "marker", "x");
    write_file(t.path / "dist/index.html", "changed");  // would not even hash to h any more
    REQUIRE(package_release(t.path, artifacts, releases, h, nullptr));
    CHECK(fs::exists(out / "marker"));
    CHECK(read_file(out / "dist/index.html") == "<html>hi</html>");
  }
  SECTION("a hash that does not match the content leaves nothing behind") {
    write_file(t.path / "dist/index.html", "changed since hashing");
    std::string other = "0123456789ab";
    auto s2 = package_release(t.path, artifacts, releases, other, nullptr);
    CHECK(s2.which() == status::code::corruption);
    CHECK(!fs::exists(releases / other));
    int n = 0;
    for (auto& e : fs::directory_iterator(releases)) {
      (void)e;
      ++n;
    }
    CHECK(n == 1);
  }
  SECTION("bad hash strings are refused") {
    CHECK(package_release(t.path, artifacts, releases, "../../etc", nullptr).which() ==
          status::code::invalid_argument);
    CHECK(package_release(t.path, artifacts, releases, "ABCDEF012345", nullptr).which() ==
          status::code::invalid_argument);
  }
  SECTION("a refused artifact leaves nothing behind") {
    temp_dir outside;
    write_file(outside.path / "x", "x");
    fs::create_symlink(outside.path / "x", t.path / "dist/js/evil");
    CHECK(package_release(t.path, artifacts, releases, "0123456789ab", nullptr).which() ==
          status::code::invalid_argument);
    CHECK(!fs::exists(releases / "0123456789ab"));
  }
}

TEST_CASE("switch_current, read_current and remove_release", "[release]") {
  temp_dir t, r;
  fs::path releases = r.path / "production";
  CHECK(read_current(releases) == "");

  write_file(t.path / "app/v", "1");
  std::string h1 = hash_of(t.path, {"app"});
  REQUIRE(package_release(t.path, {"app"}, releases, h1, nullptr));
  write_file(t.path / "app/v", "2");
  std::string h2 = hash_of(t.path, {"app"});
  REQUIRE(h1 != h2);
  REQUIRE(package_release(t.path, {"app"}, releases, h2, nullptr));

  REQUIRE(switch_current(releases, h1));
  CHECK(read_current(releases) == h1);
  CHECK(fs::read_symlink(releases / "current") == fs::path(h1));  // relative target
  CHECK(read_file(releases / "current/app/v") == "1");
  REQUIRE(switch_current(releases, h2));
  CHECK(read_current(releases) == h2);
  CHECK(read_file(releases / "current/app/v") == "2");

  CHECK(switch_current(releases, "aaaaaaaaaaaa").which() == status::code::not_found);
  CHECK(read_current(releases) == h2);
  CHECK(switch_current(releases, "nope").which() == status::code::invalid_argument);

  auto s = remove_release(releases, h2);
  CHECK(s.which() == status::code::invalid_argument);
  CHECK_THAT(s.message(), Catch::Contains(h2));
  CHECK(fs::exists(releases / h2));

  REQUIRE(remove_release(releases, h1));
  CHECK(!fs::exists(releases / h1));
  CHECK(remove_release(releases, h1).which() == status::code::not_found);
  CHECK(remove_release(releases, "../current00").which() == status::code::invalid_argument);

  // Only the current release and the link remain: no temp links or folders.
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(releases)) names.push_back(e.path().filename().string());
  std::vector<std::string> expected{h2, "current"};
  std::sort(names.begin(), names.end());
  std::sort(expected.begin(), expected.end());
  CHECK(names == expected);
}

TEST_CASE("package_release: dist/evil pointing at /etc is refused and nothing is packaged", "[release]") {
  temp_dir t, r;
  make_build(t.path);
  fs::path releases = r.path / "production";
  for (std::string target : {"/etc", "/etc/passwd", "../../../../../../../../../../etc", "..", "../.."}) {
    INFO("dist/evil -> " << target);
    fs::remove(t.path / "dist/evil");
    fs::create_symlink(target, t.path / "dist/evil");
    std::string h;
    bool inside_build = target == "..";  // dist/.. is the build dir itself: allowed, as a link
    auto s = hash_artifacts(t.path, kArtifacts, &h);
    if (inside_build) {
      CHECK(s);
      continue;
    }
    CHECK(s.which() == status::code::invalid_argument);
    CHECK_THAT(s.message(), Catch::Contains("dist/evil"));
    s = package_release(t.path, kArtifacts, releases, "0123456789ab", nullptr);
    CHECK(s.which() == status::code::invalid_argument);
    std::vector<std::string> left;
    std::error_code ec;
    for (fs::directory_iterator it(releases, ec), end; !ec && it != end; it.increment(ec))
      left.push_back(it->path().filename().string());
    CHECK(left.empty());
  }
}

TEST_CASE("package_release: a folder swapped for a link to outside while packaging is never read",
          "[release]") {
  // A process left behind by the build exchanges dist/d (a real folder) with a link to a folder
  // outside the build dir, as fast as it can, while berth packages. The hash asked for is the
  // one the outside folder's content would give at dist/d, so only reading through the link
  // could ever produce it: no release may be made, let alone one holding outside content.
  temp_dir t, r, outside, ref;
  write_file(outside.path / "f0", "outside-marker", 0644);
  write_file(t.path / "dist/index.html", "hi");
  write_file(t.path / "dist/d/g0", "inside");
  ::chmod((t.path / "dist/d").c_str(), 0755);
  fs::create_directory_symlink(outside.path, t.path / "stash");  // not an artifact
  // What dist looks like through the link, as a real tree: its hash.
  write_file(ref.path / "dist/index.html", "hi");
  write_file(ref.path / "dist/d/f0", "outside-marker", 0644);
  ::chmod((ref.path / "dist/d").c_str(), 0755);
  ::chmod((ref.path / "dist").c_str(), mode_of(t.path / "dist"));
  std::string through_link = hash_of(ref.path, {"dist"});
  fs::path releases = r.path / "production";

  std::atomic<bool> stop{false};
  std::atomic<long> swaps{0};
  std::thread swapper([&] {
    while (!stop.load())
      if (::renameat2(AT_FDCWD, (t.path / "dist/d").c_str(), AT_FDCWD, (t.path / "stash").c_str(),
                      RENAME_EXCHANGE) == 0)
        swaps.fetch_add(1);
  });
  int attempts = 0, packaged = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < until && packaged == 0) {
    ++attempts;
    if (package_release(t.path, {"dist"}, releases, through_link, nullptr)) ++packaged;
  }
  stop.store(true);
  swapper.join();
  INFO(attempts << " attempts, " << swaps.load() << " swaps");
  CHECK(swaps.load() > 100);
  CHECK(packaged == 0);
  CHECK(!fs::exists(releases / through_link / "dist/d/f0"));
  CHECK(read_file(outside.path / "f0") == "outside-marker");
  // No temp folder was left behind by the attempts.
  std::vector<std::string> left;
  std::error_code ec;
  for (fs::directory_iterator it(releases, ec), end; !ec && it != end; it.increment(ec))
    left.push_back(it->path().filename().string());
  CHECK(left.empty());
}

TEST_CASE("release: .git is never packaged, and an artifact naming it is refused", "[release][secrets]") {
  temp_dir build, releases;
  make_build(build.path);
  std::string clean = hash_of(build.path, {"."});
  // A repository (with a remote URL in its config) at the top and inside dist/.
  write_file(build.path / ".git/config", "[remote \"origin\"]\n\turl = https://user:tok@host/r\n");
  write_file(build.path / ".git/HEAD", "ref: refs/heads/main\n");
  write_file(build.path / "dist/.git", "gitdir: ../.git/modules/dist\n");
  CHECK(hash_of(build.path, {"."}) == clean);  // .git is not part of what a release is
  std::string hash;
  auto s = package_release(build.path, {"."}, releases.path, clean, nullptr);
  INFO(s.message());
  REQUIRE(s);
  CHECK(fs::exists(releases.path / clean / "dist/index.html"));
  CHECK_FALSE(fs::exists(releases.path / clean / ".git"));
  CHECK_FALSE(fs::exists(releases.path / clean / "dist/.git"));
  for (auto named : {".git", ".git/config", "dist/.git"}) {
    auto r = hash_artifacts(build.path, {named}, &hash);
    INFO(named);
    CHECK(r.which() == status::code::invalid_argument);
    CHECK_THAT(r.message(), Catch::Contains("never contains .git"));
  }
}
