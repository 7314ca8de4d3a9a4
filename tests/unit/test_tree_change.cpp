// Changing a workspace's live tree (runtime/workspace/tree_change.hpp): uploads applied by
// renames, single files written and removed, path checks, links the app planted, and finishing
// a change a crash interrupted.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <map>

#include <nlohmann/json.hpp>

#include "runtime/workspace/tree_change.hpp"
#include "runtime/workspace/tree_hash.hpp"
#include "tests/unit/support.hpp"

using namespace berth;
using namespace berth::test;
namespace fs = std::filesystem;

namespace {

// A workspace as the server lays it out: <root>/preview/src (live) and <root>/.uploads.
struct workspace {
  temp_dir dir{"berth-tree-change"};
  fs::path live = dir.path / "preview" / "src";
  fs::path uploads = dir.path / ".uploads";
  workspace() { fs::create_directories(live); }

  // A staging folder whose tree/ holds `files` (path -> content, mode) and `links`, as
  // extract_upload leaves it (tree 0700, folders 0755).
  fs::path stage_tree(const std::map<std::string, std::pair<std::string, mode_t>>& files,
                      const std::map<std::string, std::string>& links = {}) {
    fs::path st;
    auto s = new_staging(uploads, &st);
    REQUIRE(s.is_ok());
    REQUIRE(::mkdir((st / "tree").c_str(), 0700) == 0);
    for (auto& [p, f] : files) {
      fs::path full = st / "tree" / p;
      make_dirs(st / "tree", full.parent_path());
      write_file(full, f.first, f.second);
    }
    for (auto& [p, target] : links) {
      fs::path full = st / "tree" / p;
      make_dirs(st / "tree", full.parent_path());
      fs::create_symlink(target, full);
    }
    return st;
  }

  fs::path stage_file(const std::string& content) {
    fs::path st;
    REQUIRE(new_staging(uploads, &st).is_ok());
    write_file(st / "file", content, 0600);
    return st;
  }

  static void make_dirs(const fs::path& base, const fs::path& d) {
    fs::create_directories(d);
    for (fs::path p = d; p != base && p.has_parent_path(); p = p.parent_path()) ::chmod(p.c_str(), 0755);
  }
};

// Every entry below `root` except `.git` folders: path -> "f:<content>", "d", "l:<target>".
std::map<std::string, std::string> listing(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    auto rel = it->path().lexically_relative(root).generic_string();
    if (it->path().filename() == ".git") {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_symlink()) out[rel] = "l:" + fs::read_symlink(it->path()).string();
    else if (it->is_directory()) out[rel] = "d";
    else out[rel] = "f:" + read_file(it->path());
  }
  return out;
}

status apply(const workspace& w, tree_change::kind k, const std::string& path, const fs::path& staging,
             uint32_t mode = 0644, sandbox_identity owner = {}) {
  tree_change c;
  c.what = k;
  c.path = path;
  c.staging = staging;
  c.mode = mode;
  return apply_tree_change(w.live, c, owner);
}

bool uploads_empty(const workspace& w) { return !fs::exists(w.uploads) || fs::is_empty(w.uploads); }

}  // namespace

TEST_CASE("tree_change: replace_tree replaces, adds and removes entries, swaps files and folders, keeps .git",
          "[tree_change]") {
  workspace w;
  write_file(w.live / "same.txt", "same");
  write_file(w.live / "changed.txt", "old");
  write_file(w.live / "gone.txt", "gone");
  write_file(w.live / "was_dir" / "inner.txt", "inner");
  write_file(w.live / "was_file", "a file");
  write_file(w.live / "lib" / "old.js", "old lib");
  write_file(w.live / "run.sh", "echo old", 0644);
  write_file(w.live / ".git" / "config", "[core]");
  write_file(w.live / "lib" / ".git" / "HEAD", "ref");
  ::chmod((w.live / "lib").c_str(), 0700);

  auto st = w.stage_tree({{"same.txt", {"same", 0644}},
                          {"changed.txt", {"new", 0644}},
                          {"added/deep/n.txt", {"added", 0644}},
                          {"was_dir", {"now a file", 0644}},
                          {"was_file/x.txt", {"now in a folder", 0644}},
                          {"lib/new.js", {"new lib", 0644}},
                          {"run.sh", {"echo new", 0755}},
                          {".git/config", {"uploaded git", 0644}}},
                         {{"link", "same.txt"}});
  tree_listing uploaded, after;
  REQUIRE(hash_tree(st / "tree", &uploaded).is_ok());
  auto s = apply(w, tree_change::kind::replace_tree, "", st);
  INFO(s.message());
  REQUIRE(s.is_ok());
  // The live tree is now exactly the uploaded one: same paths, modes, contents, link targets.
  REQUIRE(hash_tree(w.live, &after).is_ok());
  CHECK(after.hash == uploaded.hash);

  std::map<std::string, std::string> want{{"same.txt", "f:same"},
                                          {"changed.txt", "f:new"},
                                          {"added", "d"},
                                          {"added/deep", "d"},
                                          {"added/deep/n.txt", "f:added"},
                                          {"was_dir", "f:now a file"},
                                          {"was_file", "d"},
                                          {"was_file/x.txt", "f:now in a folder"},
                                          {"lib", "d"},
                                          {"lib/new.js", "f:new lib"},
                                          {"run.sh", "f:echo new"},
                                          {"link", "l:same.txt"}};
  CHECK(listing(w.live) == want);
  CHECK(mode_of(w.live / "run.sh") == 0755);
  CHECK(mode_of(w.live / "changed.txt") == 0644);
  CHECK(mode_of(w.live / "lib") == 0755);  // the new tree's mode, kept folder
  CHECK(mode_of(w.live / "added" / "deep") == 0755);
  CHECK(read_file(w.live / ".git" / "config") == "[core]");  // live .git kept, the uploaded one dropped
  CHECK(read_file(w.live / "lib" / ".git" / "HEAD") == "ref");
  CHECK(uploads_empty(w));
}

TEST_CASE("tree_change: replace_tree lchowns what it moves in to the sandbox user", "[tree_change]") {
  if (::geteuid() != 0) return;  // chown needs root (the tests run as root)
  workspace w;
  write_file(w.live / "kept_dir" / "a.txt", "a");
  auto st = w.stage_tree({{"kept_dir/a.txt", {"b", 0644}}, {"new_dir/c.txt", {"c", 0644}}}, {{"l", "kept_dir"}});
  sandbox_identity owner{54321, 54322};
  REQUIRE(apply(w, tree_change::kind::replace_tree, "", st, 0, owner).is_ok());
  for (auto p : {"kept_dir/a.txt", "new_dir", "new_dir/c.txt", "l"}) {
    struct stat sb;
    REQUIRE(::lstat((w.live / p).c_str(), &sb) == 0);
    CHECK(sb.st_uid == 54321);
    CHECK(sb.st_gid == 54322);
  }
}

TEST_CASE("tree_change: write_file creates nested folders and sets the mode", "[tree_change]") {
  workspace w;
  write_file(w.live / "old.txt", "old");
  auto st = w.stage_file("#!/bin/sh\necho hi\n");
  sandbox_identity owner{::geteuid() == 0 ? 54321u : 0u, ::geteuid() == 0 ? 54321u : 0u};
  auto s = apply(w, tree_change::kind::write_file, "bin/tools/hi.sh", st, 04777, owner);
  INFO(s.message());
  REQUIRE(s.is_ok());
  CHECK(read_file(w.live / "bin" / "tools" / "hi.sh") == "#!/bin/sh\necho hi\n");
  CHECK(mode_of(w.live / "bin" / "tools" / "hi.sh") == 0755);  // & 0755: no setuid, no group/other write
  CHECK(mode_of(w.live / "bin") == 0755);
  CHECK(mode_of(w.live / "bin" / "tools") == 0755);
  if (owner.uid != 0) {
    struct stat sb;
    REQUIRE(::lstat((w.live / "bin" / "tools").c_str(), &sb) == 0);
    CHECK(sb.st_uid == owner.uid);
    REQUIRE(::lstat((w.live / "bin" / "tools" / "hi.sh").c_str(), &sb) == 0);
    CHECK(sb.st_uid == owner.uid);
  }
  // Replacing an existing file.
  st = w.stage_file("new");
  REQUIRE(apply(w, tree_change::kind::write_file, "old.txt", st).is_ok());
  CHECK(read_file(w.live / "old.txt") == "new");
  CHECK(mode_of(w.live / "old.txt") == 0644);
  // A folder is not a file: refused, the folder untouched, the staging gone.
  st = w.stage_file("x");
  auto refused = apply(w, tree_change::kind::write_file, "bin", st);
  CHECK(refused.which() == status::code::invalid_argument);
  CHECK(fs::is_directory(w.live / "bin" / "tools"));
  CHECK(uploads_empty(w));
}

TEST_CASE("tree_change: delete_file removes a file, refuses a folder, reports a missing one", "[tree_change]") {
  workspace w;
  write_file(w.live / "a" / "b.txt", "b");
  fs::create_symlink("b.txt", w.live / "a" / "link");
  CHECK(apply(w, tree_change::kind::delete_file, "a/missing.txt", {}).which() == status::code::not_found);
  CHECK(apply(w, tree_change::kind::delete_file, "nowhere/x.txt", {}).which() == status::code::not_found);
  CHECK(apply(w, tree_change::kind::delete_file, "a", {}).which() == status::code::invalid_argument);
  CHECK(fs::exists(w.live / "a" / "b.txt"));
  REQUIRE(apply(w, tree_change::kind::delete_file, "a/link", {}).is_ok());  // the link, not its target
  CHECK(fs::exists(w.live / "a" / "b.txt"));
  CHECK(!fs::exists(fs::symlink_status(w.live / "a" / "link")));
  REQUIRE(apply(w, tree_change::kind::delete_file, "a/b.txt", {}).is_ok());
  CHECK(!fs::exists(w.live / "a" / "b.txt"));
  CHECK(fs::is_directory(w.live / "a"));
}

TEST_CASE("tree_change: check_tree_path refuses paths that leave or confuse the tree", "[tree_change]") {
  CHECK(check_tree_path("src/app.js").is_ok());
  CHECK(check_tree_path("a").is_ok());
  CHECK(check_tree_path(".env").is_ok());
  CHECK(check_tree_path("a/.gitignore").is_ok());
  CHECK(check_tree_path(std::string(255, 'x')).is_ok());
  for (const std::string& bad : std::vector<std::string>{"", "..", "../x", "a/../b", "a/..", "/abs", "/etc/passwd", "a//b", "a/", ".", "./a",
                          "a/./b", ".git/config", "sub/.git/HEAD", ".git", std::string("a\0b", 3),
                          std::string(256, 'x'), "a/" + std::string(256, 'y'), std::string(4097, 'a')}) {
    INFO(bad);
    auto s = check_tree_path(bad);
    CHECK(s.which() == status::code::invalid_argument);
  }
  std::string long_ok;
  while (long_ok.size() + 11 <= 4096) long_ok += std::string(10, 'd') + "/";
  long_ok += "f";
  CHECK(long_ok.size() <= 4096);
  CHECK(check_tree_path(long_ok).is_ok());
}

TEST_CASE("tree_change: a symlink the app planted is never written through", "[tree_change]") {
  workspace w;
  temp_dir outside("berth-outside");
  fs::create_symlink(outside.path, w.live / "sub");

  auto st = w.stage_file("through the link?");
  auto s = apply(w, tree_change::kind::write_file, "sub/x", st);
  CHECK(s.which() == status::code::invalid_argument);
  CHECK(fs::is_empty(outside.path));
  CHECK(fs::is_symlink(w.live / "sub"));
  st = w.stage_file("deeper");
  CHECK(!apply(w, tree_change::kind::write_file, "sub/new/x", st).is_ok());
  CHECK(fs::is_empty(outside.path));
  CHECK(uploads_empty(w));

  // An upload whose tree has a folder `sub`: the link is replaced by the folder.
  st = w.stage_tree({{"sub/x", {"in the tree", 0644}}});
  REQUIRE(apply(w, tree_change::kind::replace_tree, "", st).is_ok());
  CHECK(fs::is_empty(outside.path));
  CHECK(!fs::is_symlink(w.live / "sub"));
  CHECK(read_file(w.live / "sub" / "x") == "in the tree");

  // A link to a folder outside, not in the new tree: removed as a link, its target untouched.
  write_file(outside.path / "keep.txt", "keep");
  fs::create_symlink(outside.path, w.live / "planted");
  st = w.stage_tree({{"sub/x", {"in the tree", 0644}}});
  REQUIRE(apply(w, tree_change::kind::replace_tree, "", st).is_ok());
  CHECK(!fs::exists(fs::symlink_status(w.live / "planted")));
  CHECK(read_file(outside.path / "keep.txt") == "keep");
}

TEST_CASE("tree_change: finish_pending completes a half-applied upload and write, drops stale stagings",
          "[tree_change]") {
  workspace w;
  // The tree before the upload: old a, x and y (the new tree holds neither), d/ with old b.
  // The upload's new tree: a, d/b, d/c, e. A crash left it half done: a and d/b were moved in,
  // y was already removed, x not yet; d/c and e are still staged.
  write_file(w.live / "a", "new a");
  write_file(w.live / "d" / "b", "new b");
  write_file(w.live / "x", "old x");
  write_file(w.live / "x_dir" / "deep" / "z", "old z");
  auto up = w.stage_tree({{"d/c", {"new c", 0644}}, {"e", {"new e", 0755}}});
  auto now = std::chrono::system_clock::now().time_since_epoch();
  int64_t t0 = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count() - 1'000'000'000;
  nlohmann::json intent{{"version", 1}, {"op", "replace_tree"}, {"path", ""}, {"mode", 0644},
                        {"begun_ns", t0}, {"types", "fdfff"}, {"paths", {"a", "d", "d/b", "d/c", "e"}}};
  write_file(up / "APPLY", intent.dump(), 0600);

  // A single-file write begun after it whose file was not moved yet, and one whose file was.
  auto wr = w.stage_file("written");
  write_file(wr / "APPLY",
             nlohmann::json{{"version", 1}, {"op", "write_file"}, {"path", "notes/w.txt"}, {"mode", 0644},
                            {"begun_ns", t0 + 1000}, {"types", ""}, {"paths", nlohmann::json::array()}}
                 .dump(),
             0600);
  fs::path moved;
  REQUIRE(new_staging(w.uploads, &moved).is_ok());
  write_file(moved / "APPLY",
             nlohmann::json{{"version", 1}, {"op", "write_file"}, {"path", "a"}, {"mode", 0644},
                            {"begun_ns", t0 - 1000}, {"types", ""}, {"paths", nlohmann::json::array()}}
                 .dump(),
             0600);

  // Uploads that never reached their apply: one from before the restart, one still running.
  fs::path stale, running;
  REQUIRE(new_staging(w.uploads, &stale).is_ok());
  write_file(stale / "upload.tar.gz", "half an archive");
  REQUIRE(new_staging(w.uploads, &running).is_ok());
  write_file(running / "upload.tar.gz", "an upload in progress");
  auto start = fs::file_time_type::clock::now();
  fs::last_write_time(stale, start - std::chrono::hours(1));

  // The sweep at a restart sees the begun changes (it leaves them), and removes only the stale upload.
  fs::path stale_too;
  REQUIRE(new_staging(w.uploads, &stale_too).is_ok());
  fs::last_write_time(stale_too, start - std::chrono::hours(1));
  bool begun = false;
  REQUIRE(sweep_staging(w.uploads, start - std::chrono::minutes(1), &begun).is_ok());
  CHECK(begun);
  CHECK(!fs::exists(stale_too));
  CHECK(fs::exists(up / "APPLY"));
  CHECK(fs::exists(running / "upload.tar.gz"));

  std::vector<tree_change> finished;
  auto s = finish_pending(w.uploads, w.live, {}, start - std::chrono::minutes(1), &finished);
  INFO(s.message());
  REQUIRE(s.is_ok());
  REQUIRE(finished.size() == 3);
  CHECK(finished[0].what == tree_change::kind::write_file);  // in the order they were begun
  CHECK(finished[0].path == "a");
  CHECK(finished[1].what == tree_change::kind::replace_tree);
  CHECK(finished[2].what == tree_change::kind::write_file);
  CHECK(finished[2].path == "notes/w.txt");
  std::map<std::string, std::string> want{{"a", "f:new a"},    {"d", "d"},     {"d/b", "f:new b"},
                                          {"d/c", "f:new c"},  {"e", "f:new e"}, {"notes", "d"},
                                          {"notes/w.txt", "f:written"}};
  CHECK(listing(w.live) == want);
  CHECK(mode_of(w.live / "e") == 0755);
  CHECK(!fs::exists(up));
  CHECK(!fs::exists(wr));
  CHECK(!fs::exists(moved));
  CHECK(!fs::exists(stale));
  CHECK(fs::exists(running / "upload.tar.gz"));

  // Nothing left to finish: a second run changes nothing.
  REQUIRE(finish_pending(w.uploads, w.live, {}, start - std::chrono::minutes(1), &finished).is_ok());
  CHECK(finished.empty());
  REQUIRE(sweep_staging(w.uploads, start - std::chrono::minutes(1), &begun).is_ok());
  CHECK_FALSE(begun);
  CHECK(listing(w.live) == want);
}

TEST_CASE("tree_change: open_tree_file opens files only", "[tree_change]") {
  workspace w;
  write_file(w.live / "src" / "app.js", "console.log(1)\n");
  fs::create_symlink("app.js", w.live / "src" / "link.js");
  fs::create_symlink("/etc", w.live / "etc");
  int fd = -1;
  uint64_t size = 0;
  REQUIRE(open_tree_file(w.live, "src/app.js", &fd, &size).is_ok());
  CHECK(size == 15);
  char buf[64];
  CHECK(::read(fd, buf, sizeof buf) == 15);
  ::close(fd);
  CHECK(open_tree_file(w.live, "src", &fd, &size).which() == status::code::invalid_argument);
  CHECK(open_tree_file(w.live, "src/link.js", &fd, &size).which() == status::code::invalid_argument);
  CHECK(open_tree_file(w.live, "etc/passwd", &fd, &size).which() == status::code::invalid_argument);
  CHECK(open_tree_file(w.live, "src/missing.js", &fd, &size).which() == status::code::not_found);
  CHECK(open_tree_file(w.live, "nowhere/missing.js", &fd, &size).which() == status::code::not_found);
  CHECK(open_tree_file(w.live, "../outside", &fd, &size).which() == status::code::invalid_argument);
}

TEST_CASE("tree_change: staging folders and the per-tree lock", "[tree_change]") {
  workspace w;
  fs::path a, b;
  REQUIRE(new_staging(w.uploads, &a).is_ok());
  REQUIRE(new_staging(w.uploads, &b).is_ok());
  CHECK(a != b);
  CHECK(a.parent_path() == w.uploads);
  CHECK(mode_of(a) == 0700);
  CHECK(mode_of(w.uploads) == 0700);
  CHECK(&workspace_lock(w.live) == &workspace_lock(w.live.string() + "/"));
  CHECK(&workspace_lock(w.live) != &workspace_lock(w.dir.path / "other"));
}
