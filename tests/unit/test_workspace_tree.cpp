// The tree hash of a workspace (runtime/workspace/tree_hash.hpp) and the consistent snapshot a
// deploy takes of it while it is being edited (workspace_snapshot.hpp).
#include <catch2/catch.hpp>

#include "tests/unit/support.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "runtime/workspace/tree_hash.hpp"
#include "runtime/workspace/workspace_snapshot.hpp"

using namespace berth;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

using berth::test::mode_of;
using berth::test::read_file;
using berth::test::temp_dir;
using berth::test::write_file;

namespace {

tree_listing hashed(const fs::path& root, tree_hash_cache* cache = nullptr) {
  tree_listing l;
  auto s = hash_tree(root, &l, cache);
  INFO(s.message());
  REQUIRE(s.is_ok());
  return l;
}

const tree_entry* entry(const tree_listing& l, const std::string& path) {
  for (auto& e : l.entries)
    if (e.path == path) return &e;
  return nullptr;
}

// A small app: files in folders, an executable script, a relative link, an empty folder.
void small_app(const fs::path& root) {
  write_file(root / "server.py", "print('hello')\n");
  write_file(root / "bin/run.sh", "#!/bin/sh\nexec python3 server.py\n", 0755);
  write_file(root / "static/index.html", "<h1>v1</h1>\n");
  write_file(root / "static/css/site.css", "h1 { color: red }\n");
  fs::create_directories(root / "empty");
  fs::create_symlink("static/index.html", root / "index.html");
}

// `files` files of `size` random bytes in folders of 100.
void random_tree(const fs::path& root, int files, size_t size, unsigned seed = 7) {
  std::mt19937_64 rng(seed);
  std::string buf(size, '\0');
  for (int i = 0; i < files; ++i) {
    for (size_t k = 0; k + 8 <= size; k += 8) {
      uint64_t v = rng();
      std::memcpy(&buf[k], &v, 8);
    }
    write_file(root / fmt::format("d{:02}/f{:04}.bin", i / 100, i), buf);
  }
}

// Siblings of `dest` left behind by a snapshot (its temp folder).
std::vector<std::string> leftovers(const fs::path& dest) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dest.parent_path(), ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().rfind(dest.filename().string() + ".", 0) == 0)
      out.push_back(it->path().filename().string());
  return out;
}

// Waits until a snapshot of `dest` has begun (its temp sibling exists); false after `limit`.
bool snapshot_started(const fs::path& dest, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (!leftovers(dest).empty()) return true;
    std::this_thread::sleep_for(200us);
  }
  return false;
}

}  // namespace

TEST_CASE("tree hash: two copies of a tree in different folders hash the same", "[workspace_tree]") {
  temp_dir a("tree-a"), b("tree-b");
  small_app(a.path / "src");
  small_app(b.path / "elsewhere/deeper");
  auto la = hashed(a.path / "src"), lb = hashed(b.path / "elsewhere/deeper");
  CHECK(la.hash.size() == 64);
  CHECK(la.hash == lb.hash);
  CHECK(la.files == 4);
  CHECK(la.bytes == lb.bytes);
  REQUIRE(la.entries.size() == lb.entries.size());
  // Sorted by path, with types, modes, sizes and content hashes.
  for (size_t i = 1; i < la.entries.size(); ++i) CHECK(la.entries[i - 1].path < la.entries[i].path);
  auto* run = entry(la, "bin/run.sh");
  REQUIRE(run != nullptr);
  CHECK(run->type == 'f');
  CHECK(run->mode == 0755);
  CHECK(run->size == fs::file_size(a.path / "src/bin/run.sh"));
  CHECK(run->sha256.size() == 64);
  CHECK(run->sha256 == entry(lb, "bin/run.sh")->sha256);
  auto* link = entry(la, "index.html");
  REQUIRE(link != nullptr);
  CHECK(link->type == 'l');
  CHECK(link->target == "static/index.html");
  REQUIRE(entry(la, "empty") != nullptr);
  CHECK(entry(la, "empty")->type == 'd');
}

TEST_CASE("tree hash: changes with a byte or an exec bit or a link target or a rename or an empty folder",
          "[workspace_tree]") {
  temp_dir t("tree-change");
  fs::path root = t.path / "src";
  small_app(root);
  std::set<std::string> seen{hashed(root).hash};
  auto changes_hash = [&](const char* what) {
    INFO(what);
    auto h = hashed(root).hash;
    CHECK(seen.insert(h).second);
  };
  write_file(root / "server.py", "print('hellp')\n");
  changes_hash("one byte of a file");
  ::chmod((root / "server.py").c_str(), 0755);
  changes_hash("the exec bit");
  fs::remove(root / "index.html");
  fs::create_symlink("static/css/site.css", root / "index.html");
  changes_hash("a link's target");
  fs::rename(root / "static/css/site.css", root / "static/css/main.css");
  changes_hash("a renamed file");
  fs::create_directories(root / "static/img");
  changes_hash("an added empty folder");
  // Putting everything back gives the first hash again.
  write_file(root / "server.py", "print('hello')\n", 0644);
  fs::remove(root / "index.html");
  fs::create_symlink("static/index.html", root / "index.html");
  fs::rename(root / "static/css/main.css", root / "static/css/site.css");
  fs::remove(root / "static/img");
  CHECK(seen.count(hashed(root).hash) == 1);
  CHECK(seen.size() == 6);
}

TEST_CASE("tree hash: .git folders are not part of the tree", "[workspace_tree]") {
  temp_dir t("tree-git");
  fs::path root = t.path / "src";
  small_app(root);
  auto before = hashed(root);
  write_file(root / ".git/HEAD", "ref: refs/heads/main\n");
  write_file(root / "static/.git/config", "[core]\n");
  write_file(root / "vendor/lib/.git", "gitdir: ../../.git/modules/lib\n");
  auto after = hashed(root);
  CHECK(after.hash != before.hash);  // vendor/ and vendor/lib/ are new folders
  fs::remove_all(root / "vendor");
  auto without_vendor = hashed(root);
  CHECK(without_vendor.hash == before.hash);
  for (auto& e : without_vendor.entries) CHECK(e.path.find(".git") == std::string::npos);
}

TEST_CASE("tree hash: a symlink to /etc/passwd is hashed as a link and never read", "[workspace_tree]") {
  temp_dir t("tree-link");
  fs::path root = t.path / "src";
  small_app(root);
  fs::create_symlink("/etc/passwd", root / "passwd");
  fs::create_symlink("/etc", root / "etc");
  auto l = hashed(root);
  auto* p = entry(l, "passwd");
  REQUIRE(p != nullptr);
  CHECK(p->type == 'l');
  CHECK(p->target == "/etc/passwd");
  CHECK(p->sha256.empty());
  CHECK(p->size == 0);
  CHECK(entry(l, "etc")->type == 'l');
  for (auto& e : l.entries) CHECK(e.path.rfind("etc/", 0) != 0);  // the folder behind the link is not walked
  CHECK(l.files == 4);
  // A link with the same target in another tree hashes the same: the target text, not the file.
  temp_dir u("tree-link2");
  small_app(u.path / "src");
  fs::create_symlink("/etc/passwd", u.path / "src/passwd");
  fs::create_symlink("/etc", u.path / "src/etc");
  CHECK(hashed(u.path / "src").hash == l.hash);
}

TEST_CASE("tree hash: a missing root is not_found", "[workspace_tree]") {
  temp_dir t("tree-missing");
  tree_listing l;
  CHECK(hash_tree(t.path / "nope", &l).which() == status::code::not_found);
}

TEST_CASE("tree hash cache: a known file is not read again and a file rewritten within 50 ms is",
          "[workspace_tree]") {
  temp_dir t("tree-cache");
  fs::path root = t.path / "src";
  small_app(root);
  std::this_thread::sleep_for(80ms);  // out of the recent-write window
  tree_hash_cache cache;
  auto first = hashed(root, &cache);
  // The cache answers for a file whose identity is unchanged: a hash planted under the file's
  // identity is what the listing shows (so its bytes were not read).
  struct stat st;
  REQUIRE(::lstat((root / "server.py").c_str(), &st) == 0);
  std::string planted(64, 'a');
  cache.put("server.py", file_identity::of(st), planted);
  CHECK(entry(hashed(root, &cache), "server.py")->sha256 == planted);
  CHECK(entry(hashed(root), "server.py")->sha256 == entry(first, "server.py")->sha256);  // without the cache
  cache.forget_all();
  CHECK(hashed(root, &cache).hash == first.hash);

  // A file written, hashed, and rewritten with the same size and mtime at once (its ctime may
  // not move within one clock tick): the rewrite is still seen.
  fs::path f = root / "static/index.html";
  for (int i = 0; i < 20; ++i) {
    write_file(f, "<h1>v1</h1>\n");
    struct stat a;
    REQUIRE(::stat(f.c_str(), &a) == 0);
    auto l1 = hashed(root, &cache);
    write_file(f, "<h1>v2</h1>\n");
    timespec times[2] = {a.st_atim, a.st_mtim};
    REQUIRE(::utimensat(AT_FDCWD, f.c_str(), times, 0) == 0);
    auto l2 = hashed(root, &cache);
    CHECK(entry(l2, "static/index.html")->sha256 != entry(l1, "static/index.html")->sha256);
    CHECK(l2.hash == hashed(root).hash);
  }
  // And the same after the window: the rewrite moves the ctime, so the identity differs.
  std::this_thread::sleep_for(80ms);
  auto l3 = hashed(root, &cache);
  write_file(f, "<h1>v3</h1>\n");
  CHECK(hashed(root, &cache).hash != l3.hash);
}

TEST_CASE("hash_cache_for: one cache per tree path", "[workspace_tree]") {
  temp_dir t("tree-registry");
  auto a = hash_cache_for(t.path / "a"), a2 = hash_cache_for(t.path / "x/../a/"), b = hash_cache_for(t.path / "b");
  CHECK(a == a2);
  CHECK(a != b);
}

TEST_CASE("workspace snapshot: a quiet tree is copied exactly", "[workspace_tree]") {
  temp_dir t("ws-quiet");
  fs::path live = t.path / "preview/src", dest = t.path / "builds/d1";
  small_app(live);
  write_file(live / ".git/HEAD", "ref: refs/heads/main\n");
  fs::create_symlink("/etc/passwd", live / "passwd");
  ::chmod((live / "static").c_str(), 0750);
  std::this_thread::sleep_for(30ms);
  snapshot_record record;
  tree_listing listing;
  auto s = snapshot_workspace(live, dest, hash_cache_for(live).get(), &record, &listing);
  INFO(s.message());
  REQUIRE(s.is_ok());
  auto l = hashed(live);
  CHECK(listing.hash == l.hash);
  CHECK(hashed(dest).hash == l.hash);
  CHECK(listing.files == 4);
  CHECK(read_file(dest / "bin/run.sh") == read_file(live / "bin/run.sh"));
  CHECK(mode_of(dest / "bin/run.sh") == 0755);
  CHECK(mode_of(dest / "static") == 0750);
  CHECK(fs::read_symlink(dest / "passwd") == "/etc/passwd");
  CHECK_FALSE(fs::exists(dest / ".git"));
  CHECK(leftovers(dest).empty());
  // The record ties every copied file to its live source.
  CHECK(record.size() == 4);
  struct stat src_st, copy_st;
  REQUIRE(::lstat((live / "server.py").c_str(), &src_st) == 0);
  REQUIRE(::lstat((dest / "server.py").c_str(), &copy_st) == 0);
  CHECK(record["server.py"].source == file_identity::of(src_st));
  CHECK(record["server.py"].copy == file_identity::of(copy_st));
  // A second snapshot of the unchanged tree (its files' hashes now cached) is the same.
  tree_listing again;
  REQUIRE(snapshot_workspace(live, t.path / "builds/d2", hash_cache_for(live).get(), nullptr, &again).is_ok());
  CHECK(again.hash == l.hash);
}

TEST_CASE("workspace snapshot: a file rewritten every millisecond fails it with source_busy", "[workspace_tree]") {
  temp_dir t("ws-busy");
  fs::path live = t.path / "preview/src", dest = t.path / "builds/d1";
  random_tree(live, 300, 4096);
  write_file(live / "hot/log.txt", "0");
  std::this_thread::sleep_for(30ms);  // the rest of the tree is quiet
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 1; !stop; ++i) {
      write_file(live / "hot/log.txt", std::to_string(i));
      std::this_thread::sleep_for(1ms);
    }
  });
  auto s = snapshot_workspace(live, dest, nullptr, nullptr, nullptr);
  stop = true;
  writer.join();
  INFO(s.message());
  CHECK(is_source_busy(s));
  CHECK(s.which() == status::code::corruption);
  CHECK(s.message() == "source_busy: hot/log.txt kept changing while it was copied");
  CHECK_FALSE(fs::exists(dest));
  CHECK(leftovers(dest).empty());
  CHECK_FALSE(is_source_busy(status::io_error("source_busy: not from a snapshot")));
}

TEST_CASE("workspace snapshot: a file changed once during the copy is copied again", "[workspace_tree]") {
  temp_dir t("ws-once");
  fs::path live = t.path / "preview/src", dest = t.path / "builds/d1";
  random_tree(live, 2000, 4096);  // 2,000 files: long enough to copy (well over 100 ms) that the change lands in it
  std::this_thread::sleep_for(30ms);
  // Every file of one folder is rewritten: some before the copy reaches them, some after.
  std::atomic<bool> changed{false};
  std::thread writer([&] {
    if (!snapshot_started(dest, 10s)) return;
    for (int i = 0; i < 100; ++i) write_file(live / fmt::format("d00/f{:04}.bin", i), "changed " + std::to_string(i));
    changed = true;
  });
  tree_listing listing;
  auto s = snapshot_workspace(live, dest, hash_cache_for(live).get(), nullptr, &listing);
  bool changed_during = changed;
  writer.join();
  INFO(s.message());
  REQUIRE(s.is_ok());
  REQUIRE(changed_during);
  for (int i = 0; i < 100; i += 9)
    CHECK(read_file(dest / fmt::format("d00/f{:04}.bin", i)) == "changed " + std::to_string(i));
  CHECK(listing.hash == hashed(live).hash);
  CHECK(hashed(dest).hash == listing.hash);
}

TEST_CASE("workspace snapshot: files deleted and added during the copy", "[workspace_tree]") {
  temp_dir t("ws-churn");
  fs::path live = t.path / "preview/src", dest = t.path / "builds/d1";
  random_tree(live, 1000, 4096);
  std::this_thread::sleep_for(30ms);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    if (!snapshot_started(dest, 10s)) return;
    for (int i = 0; i < 1000; i += 20) fs::remove(live / fmt::format("d{:02}/f{:04}.bin", i / 100, i));
    fs::remove_all(live / "d07");
    write_file(live / "new/deep/file.txt", "added");
    write_file(live / "d09/added.bin", "added too");
    fs::create_symlink("../new/deep/file.txt", live / "d03/link");
    done = true;
  });
  tree_listing listing;
  auto s = snapshot_workspace(live, dest, nullptr, nullptr, &listing);
  bool during = done;
  writer.join();
  INFO(s.message());
  REQUIRE(s.is_ok());
  REQUIRE(during);
  CHECK_FALSE(fs::exists(dest / "d00/f0000.bin"));
  CHECK_FALSE(fs::exists(dest / "d07"));
  CHECK(read_file(dest / "new/deep/file.txt") == "added");
  CHECK(read_file(dest / "d09/added.bin") == "added too");
  CHECK(fs::read_symlink(dest / "d03/link") == "../new/deep/file.txt");
  CHECK(listing.hash == hashed(live).hash);
  CHECK(listing.files == hashed(live).files);
}

TEST_CASE("workspace snapshot: a folder swapped for a link to /etc is copied as the link", "[workspace_tree]") {
  temp_dir t("ws-swap");
  fs::path live = t.path / "preview/src", dest = t.path / "builds/d1";
  random_tree(live, 1000, 4096);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    if (!snapshot_started(dest, 10s)) return;
    fs::remove_all(live / "d05");
    fs::create_symlink("/etc", live / "d05");
    done = true;
  });
  tree_listing listing;
  auto s = snapshot_workspace(live, dest, nullptr, nullptr, &listing);
  writer.join();
  INFO(s.message());
  REQUIRE(s.is_ok());
  REQUIRE(done);
  CHECK(fs::is_symlink(dest / "d05"));
  CHECK(fs::read_symlink(dest / "d05") == "/etc");
  CHECK(listing.hash == hashed(live).hash);
}

TEST_CASE("the hash cache keeps only what the last walk of its tree found", "[workspace_tree]") {
  berth::test::temp_dir t;
  auto live = t.path / "live";
  fs::create_directories(live / "gen");
  for (int i = 0; i < 20; ++i) {
    std::ofstream(live / "gen" / ("chunk-" + std::to_string(i) + ".js")) << "build " << i;
  }
  std::ofstream(live / "keep.txt") << "kept";
  tree_hash_cache cache;
  // Files are remembered only once they are older than the cache's recent window.
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  tree_listing first;
  REQUIRE(hash_tree(live, &first, &cache).is_ok());
  std::string sha;
  auto id_of = [&](const std::string& rel) {
    struct stat st {};
    REQUIRE(::lstat((live / rel).c_str(), &st) == 0);
    return file_identity::of(st);
  };
  auto old_id = id_of("gen/chunk-3.js");
  CHECK(cache.find("gen/chunk-3.js", old_id, &sha));
  // A rebuild names its chunks anew: the old names are dropped from the cache, the kept file stays.
  fs::remove_all(live / "gen");
  fs::create_directories(live / "gen");
  std::ofstream(live / "gen" / "chunk-new.js") << "build new";
  tree_listing second;
  REQUIRE(hash_tree(live, &second, &cache).is_ok());
  CHECK_FALSE(cache.find("gen/chunk-3.js", old_id, &sha));
  CHECK(cache.find("keep.txt", id_of("keep.txt"), &sha));
}

TEST_CASE("forget_hash_cache drops a tree's cache", "[workspace_tree]") {
  berth::test::temp_dir t;
  auto a = hash_cache_for(t.path / "gone");
  file_identity id;
  id.ino = 7;
  a->put("x", id, std::string(64, '0'));
  std::string sha;
  CHECK(a->find("x", id, &sha));
  forget_hash_cache(t.path / "gone");
  auto b = hash_cache_for(t.path / "gone");
  CHECK(a.get() != b.get());
  CHECK_FALSE(b->find("x", id, &sha));
}
