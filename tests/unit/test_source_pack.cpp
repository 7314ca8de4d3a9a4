// `berth push` packing: the archive read back with libarchive holds exactly the folder's
// files, folders and links (as links), with their modes, owners zeroed, no .git, nothing the
// .berthignore excludes.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "cli/client/source_pack.hpp"
#include "tests/unit/support.hpp"

using namespace berth::test;
using berth::cli::pack_source;

namespace {

struct entry {
  unsigned type = 0;
  unsigned perm = 0;
  int64_t uid = -1, gid = -1;
  std::string uname, gname, content, target;
};

// Every entry of the packed archive (read through its fd from offset 0), by path.
std::map<std::string, entry> read_back(int fd) {
  REQUIRE(::lseek(fd, 0, SEEK_SET) == 0);
  std::map<std::string, entry> out;
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  REQUIRE(archive_read_open_fd(a, fd, 1 << 16) == ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    entry x;
    x.type = archive_entry_filetype(e);
    x.perm = archive_entry_perm(e);
    x.uid = archive_entry_uid(e);
    x.gid = archive_entry_gid(e);
    x.uname = archive_entry_uname(e) ? archive_entry_uname(e) : "";
    x.gname = archive_entry_gname(e) ? archive_entry_gname(e) : "";
    if (archive_entry_symlink(e)) x.target = archive_entry_symlink(e);
    char buf[4096];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) x.content.append(buf, static_cast<size_t>(n));
    REQUIRE(n == 0);
    std::string path = archive_entry_pathname(e);
    if (x.type == AE_IFDIR && !path.empty() && path.back() == '/') path.pop_back();  // tar writes "dir/"
    out[path] = x;
  }
  archive_read_free(a);
  return out;
}

}  // namespace

TEST_CASE("source pack: files folders and links with their modes and no .git nor ignored paths",
          "[source_pack]") {
  temp_dir tmp("berth-pack");
  auto root = tmp.path / "app";
  write_file(root / ".berthignore",
             "# build output and logs\n"
             "node_modules/\n"
             "!node_modules/keep.js\n"  // cannot re-include below a pruned folder (as git)
             "*.log\n"
             "!important.log\n"
             "/secret.txt\n"
             "dist/**\n");
  write_file(root / "index.html", "<h1>hi</h1>\n");
  write_file(root / "run.sh", "#!/bin/sh\necho hi\n", 0755);
  write_file(root / "private.key", "k", 0600);
  write_file(root / "src/app.py", "print('app')\n");
  write_file(root / "src/secret.txt", "not anchored: kept\n");
  write_file(root / "secret.txt", "anchored: left out\n");
  write_file(root / "debug.log", "noise");
  write_file(root / "src/deep/trace.log", "noise");
  write_file(root / "important.log", "kept");
  write_file(root / "node_modules/lib/index.js", "x");
  write_file(root / "node_modules/keep.js", "x");
  write_file(root / "dist/bundle.js", "x");
  fs::create_directories(root / "empty");
  ::chmod((root / "empty").c_str(), 0700);
  write_file(root / ".git/HEAD", "ref: refs/heads/main\n");
  write_file(root / "src/vendored/.git", "gitdir: elsewhere\n");  // a submodule's .git file
  REQUIRE(::symlink("src/app.py", (root / "app-link").c_str()) == 0);
  REQUIRE(::symlink("/etc/passwd", (root / "abs-link").c_str()) == 0);
  REQUIRE(::mkfifo((root / "pipe").c_str(), 0644) == 0);

  std::vector<std::string> warnings;
  auto packed = pack_source(root.string(), [&](const std::string& w) { warnings.push_back(w); });
  REQUIRE(packed.fd >= 0);
  struct stat st;
  REQUIRE(::fstat(packed.fd, &st) == 0);
  CHECK(st.st_nlink == 0);  // unlinked: nothing left behind in the temp folder
  CHECK(packed.archive_bytes == static_cast<uint64_t>(st.st_size));

  auto entries = read_back(packed.fd);
  std::vector<std::string> paths;
  for (auto& [path, e] : entries) paths.push_back(path);
  CHECK(paths == std::vector<std::string>{".berthignore", "abs-link", "app-link", "dist", "empty", "important.log",
                                          "index.html", "private.key", "run.sh", "src", "src/app.py",
                                          "src/deep", "src/secret.txt", "src/vendored"});
  CHECK(entries["run.sh"].type == AE_IFREG);
  CHECK(entries["run.sh"].perm == 0755);
  CHECK(entries["run.sh"].content == "#!/bin/sh\necho hi\n");
  CHECK(entries["private.key"].perm == 0600);
  CHECK(entries["index.html"].perm == 0644);
  CHECK(entries["empty"].type == AE_IFDIR);
  CHECK(entries["empty"].perm == 0700);
  CHECK(entries["dist"].type == AE_IFDIR);  // dist/** leaves out what is inside, not dist
  // links kept as links, never followed
  CHECK(entries["app-link"].type == AE_IFLNK);
  CHECK(entries["app-link"].target == "src/app.py");
  CHECK(entries["app-link"].content.empty());
  CHECK(entries["abs-link"].type == AE_IFLNK);
  CHECK(entries["abs-link"].target == "/etc/passwd");
  for (auto& [path, e] : entries) {
    INFO(path);
    CHECK(e.uid == 0);
    CHECK(e.gid == 0);
    CHECK(e.uname.empty());
    CHECK(e.gname.empty());
  }
  CHECK(packed.files == 7);
  CHECK(packed.dirs == 5);  // src/deep stays, empty once trace.log is left out
  CHECK(packed.links == 2);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("fifo") != std::string::npos);
  CHECK(warnings[0].find("pipe") != std::string::npos);
}

TEST_CASE("source pack: an excluded folder is not looked into", "[source_pack]") {
  temp_dir tmp("berth-pack");
  auto root = tmp.path / "app";
  write_file(root / ".berthignore", "locked/\n");
  write_file(root / "a.txt", "a");
  fs::create_directories(root / "locked/inner");
  // A fifo below it would be warned about if the folder were walked.
  REQUIRE(::mkfifo((root / "locked/inner/pipe").c_str(), 0644) == 0);
  std::vector<std::string> warnings;
  auto packed = pack_source(root.string(), [&](const std::string& w) { warnings.push_back(w); });
  auto entries = read_back(packed.fd);
  CHECK(entries.size() == 2);
  CHECK(entries.count("a.txt") == 1);
  CHECK(entries.count(".berthignore") == 1);
  CHECK(warnings.empty());  // the fifo below was never seen
}

TEST_CASE("source pack: a missing folder is an error naming it", "[source_pack]") {
  temp_dir tmp("berth-pack");
  auto missing = (tmp.path / "nope").string();
  REQUIRE_THROWS_WITH(pack_source(missing), Catch::Contains(missing));
}
