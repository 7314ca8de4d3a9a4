// extract_upload (runtime/workspace/upload_extract.hpp): a good tree lands as sent; every hostile
// or broken archive is refused with the right kind of error and leaves no staging folder behind.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include <nlohmann/json.hpp>

#include "runtime/workspace/upload_extract.hpp"
#include "tests/common/tar_builder.hpp"
#include "tests/unit/support.hpp"

using namespace berth;
using berth::test::tar_builder;
using berth::test::temp_dir;
namespace fs = std::filesystem;

namespace {

struct upload {
  temp_dir dir{"upload-extract"};
  fs::path archive = dir.path / "upload.tar.gz";
  fs::path staging = dir.path / "tree";
  upload_summary sum;
  status extract(const upload_limits& limits = {}) { return extract_upload(archive, staging, limits, &sum); }
};

std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  return s;
}

// A hostile entry: refused as unsafe (not a limit, not corruption), naming `entry`, and the
// staging folder is gone.
void require_unsafe(upload& u, const status& s, const std::string& entry, const std::string& why) {
  INFO(s.message());
  REQUIRE(s.which() == status::code::invalid_argument);
  CHECK_FALSE(is_limit_refusal(s));
  CHECK(u.sum.refused == entry);
  CHECK(s.message().find("\"" + entry + "\"") != std::string::npos);
  CHECK(s.message().find(why) != std::string::npos);
  CHECK_FALSE(fs::exists(fs::symlink_status(u.staging)));
}

void require_limit(upload& u, const status& s, const std::string& flag) {
  INFO(s.message());
  REQUIRE(s.which() == status::code::invalid_argument);
  CHECK(is_limit_refusal(s));
  CHECK(s.message().find(flag) != std::string::npos);
  CHECK_FALSE(fs::exists(fs::symlink_status(u.staging)));
}

void require_corrupt(upload& u, const status& s) {
  INFO(s.message());
  REQUIRE(s.which() == status::code::corruption);
  CHECK_FALSE(fs::exists(fs::symlink_status(u.staging)));
}

}  // namespace

TEST_CASE("upload_extract: a good tree lands with its files and folders and exec bits and inner links", "[upload_extract]") {
  upload u;
  std::string blob = random_bytes(300000, 1);
  tar_builder(u.archive)
      .dir("./")
      .dir("./app")
      .file("./app/server.py", "print('v1')\n")
      .file("./app/bin/run", "#!/bin/sh\necho run\n", 0755)
      .file("./app/setuid", "x", 04755)
      .file("./app/shared", "y", 0666)
      .file("./app/private", "z", 0400)
      .file("deep/a/b/c/data.bin", blob)
      .file("h\xc3\xa9llo.txt", "utf-8 name")
      .dir("empty", 0700)
      .symlink("current", "app/server.py")
      .symlink("app/docs", "../deep/a")
      .symlink("here", ".")
      .close();
  auto s = u.extract();
  INFO(s.message());
  REQUIRE(s.is_ok());
  auto& t = u.staging;
  CHECK(test::mode_of(t) == 0700);
  CHECK(test::read_file(t / "app/server.py") == "print('v1')\n");
  CHECK(test::read_file(t / "deep/a/b/c/data.bin") == blob);
  CHECK(test::read_file(t / "h\xc3\xa9llo.txt") == "utf-8 name");
  CHECK(test::mode_of(t / "app/server.py") == 0644);
  CHECK(test::mode_of(t / "app/bin/run") == 0755);
  CHECK(test::mode_of(t / "app/setuid") == 0755);   // setuid dropped
  CHECK(test::mode_of(t / "app/shared") == 0644);   // group/other write dropped
  CHECK(test::mode_of(t / "app/private") == 0600);  // berth can still read it
  CHECK(test::mode_of(t / "app/bin") == 0755);      // implied folders
  CHECK(test::mode_of(t / "empty") == 0755);
  CHECK(fs::is_empty(t / "empty"));
  CHECK(fs::read_symlink(t / "current") == "app/server.py");
  CHECK(fs::read_symlink(t / "app/docs") == "../deep/a");
  CHECK(test::read_file(t / "app/docs/b/c/data.bin") == blob);
  CHECK(fs::read_symlink(t / "here") == ".");
  struct stat st;
  REQUIRE(::lstat((t / "app/server.py").c_str(), &st) == 0);
  CHECK(st.st_mtim.tv_sec == 1700000000);
  CHECK(u.sum.files == 7);
  CHECK(u.sum.links == 3);
  CHECK(u.sum.dirs == 7);  // app, app/bin, deep, deep/a, deep/a/b, deep/a/b/c, empty
  CHECK(u.sum.bytes == 12 + 19 + 1 + 1 + 1 + blob.size() + 10);
  CHECK(u.sum.refused.empty());
}

TEST_CASE("upload_extract: an empty tar.gz gives an empty tree", "[upload_extract]") {
  upload u;
  tar_builder(u.archive).close();
  REQUIRE(u.extract().is_ok());
  CHECK(fs::is_empty(u.staging));
}

TEST_CASE("upload_extract: a .. entry is refused and nothing lands beside the staging folder", "[upload_extract]") {
  upload u;
  tar_builder(u.archive).file("ok.txt", "fine").file("../evil.txt", "out").close();
  require_unsafe(u, u.extract(), "../evil.txt", "\"..\"");
  CHECK_FALSE(fs::exists(u.dir.path / "evil.txt"));
  upload v;
  tar_builder(v.archive).file("a/../../evil.txt", "out").close();
  require_unsafe(v, v.extract(), "a/../../evil.txt", "\"..\"");
  CHECK_FALSE(fs::exists(v.dir.path / "evil.txt"));
}

TEST_CASE("upload_extract: an absolute path is refused and not written there", "[upload_extract]") {
  upload u;
  fs::path target = u.dir.path / "absolute.txt";
  tar_builder(u.archive).file(target.string(), "out").close();
  require_unsafe(u, u.extract(), target.string(), "absolute path");
  CHECK_FALSE(fs::exists(target));
}

TEST_CASE("upload_extract: a symlink to /etc/passwd and a file written through it change nothing in /etc", "[upload_extract]") {
  std::string before = test::read_file("/etc/passwd");
  REQUIRE_FALSE(before.empty());
  std::string probe = "berth-upload-probe-" + fsutil::random_suffix();
  upload u;
  tar_builder(u.archive).symlink("passwd", "/etc/passwd").file("passwd", "root::0:0::/:/bin/sh\n").close();
  require_unsafe(u, u.extract(), "passwd", "absolute path");
  upload v;  // a relative climb to /etc, then a new file through it
  tar_builder(v.archive).symlink("etc", "../../../../../../../../etc").file("etc/" + probe, "planted").close();
  require_unsafe(v, v.extract(), "etc", "leaving the tree");
  CHECK(test::read_file("/etc/passwd") == before);
  CHECK_FALSE(fs::exists("/etc/" + probe));
}

TEST_CASE("upload_extract: nothing is written below a symlink the archive made", "[upload_extract]") {
  upload u;  // at the root, a -> .. leaves the tree: refused at the link
  tar_builder(u.archive).symlink("a", "..").file("a/x", "through").close();
  require_unsafe(u, u.extract(), "a", "leaving the tree");
  CHECK_FALSE(fs::exists(u.dir.path / "x"));
  upload v;  // one level down, sub/a -> .. is the root (allowed), but sub/a/x goes through it
  tar_builder(v.archive).dir("sub").symlink("sub/a", "..").file("sub/a/x", "through").close();
  require_unsafe(v, v.extract(), "sub/a/x", "passes through the symlink sub/a");
}

TEST_CASE("upload_extract: a chain of inner links that climbs out is refused whatever their order", "[upload_extract]") {
  upload u;  // s -> . is the root; t -> s/.. is then the root's parent
  tar_builder(u.archive).symlink("s", ".").symlink("t", "s/..").close();
  require_unsafe(u, u.extract(), "t", "leaving the tree");
  upload v;  // t first (s is not a link yet, so t looks inside), then s: checked again at the end
  tar_builder(v.archive).symlink("t", "s/..").symlink("s", ".").close();
  require_unsafe(v, v.extract(), "t", "leaving the tree");
  upload w;  // a loop
  tar_builder(w.archive).symlink("p", "q").symlink("q", "p").close();
  require_unsafe(w, w.extract(), "p", "loop");
}

TEST_CASE("upload_extract: a hard link is refused", "[upload_extract]") {
  upload u;
  tar_builder(u.archive).file("f", "data").hardlink("h", "f").close();
  require_unsafe(u, u.extract(), "h", "hard link");
  upload v;
  tar_builder(v.archive).hardlink("pw", "/etc/passwd").close();
  require_unsafe(v, v.extract(), "pw", "hard link");
}

TEST_CASE("upload_extract: a character device is refused", "[upload_extract]") {
  upload u;
  tar_builder(u.archive).file("ok", "x").device("null").close();
  require_unsafe(u, u.extract(), "null", "character device");
}

TEST_CASE("upload_extract: a block device is refused", "[upload_extract]") {
  upload u;
  tar_builder(u.archive).device("disk", true).close();
  require_unsafe(u, u.extract(), "disk", "block device");
}

TEST_CASE("upload_extract: a fifo is refused", "[upload_extract]") {
  upload u;
  tar_builder(u.archive).fifo("pipe").close();
  require_unsafe(u, u.extract(), "pipe", "fifo");
}

TEST_CASE("upload_extract: a duplicate file is refused", "[upload_extract]") {
  upload u;
  tar_builder(u.archive).file("a.txt", "one").file("a.txt", "two").close();
  require_unsafe(u, u.extract(), "a.txt", "duplicate file");
}

TEST_CASE("upload_extract: a path that is both a file and a folder is refused", "[upload_extract]") {
  upload u;
  tar_builder(u.archive).file("f", "file").file("f/x", "below a file").close();
  require_unsafe(u, u.extract(), "f/x", "not a folder");
  upload v;
  tar_builder(v.archive).dir("d").file("d", "file over a folder").close();
  require_unsafe(v, v.extract(), "d", "already has a folder");
}

TEST_CASE("upload_extract: more entries than the file limit is a limit refusal", "[upload_extract]") {
  upload_limits limits;
  limits.max_files = 10;
  upload ok;  // exactly at the limit (9 files and their folder)
  {
    tar_builder t(ok.archive);
    for (int i = 0; i < 9; ++i) t.file("d/f" + std::to_string(i), "x");
  }
  REQUIRE(ok.extract(limits).is_ok());
  upload u;  // a tar bomb of small files
  {
    tar_builder t(u.archive);
    for (int i = 0; i < 1000; ++i) t.file("f" + std::to_string(i), "x");
  }
  require_limit(u, u.extract(limits), "--max-upload-files");
  CHECK(u.sum.files == 10);
  upload deep;  // the folders a path implies count too
  tar_builder(deep.archive).file("a/b/c/d/e/f/g/h/i/j/k/l", "x").close();
  require_limit(deep, deep.extract(limits), "--max-upload-files");
}

TEST_CASE("upload_extract: more unpacked bytes than the limit is a limit refusal", "[upload_extract]") {
  upload_limits limits;
  limits.max_unpacked_bytes = 1 << 20;
  upload u;  // each file under the limit, together over it
  tar_builder(u.archive).file("a", random_bytes(600000, 2)).file("b", random_bytes(600000, 3)).close();
  require_limit(u, u.extract(limits), "--max-upload-unpacked-bytes");
  CHECK(u.sum.refused == "b");
  CHECK(u.sum.bytes <= limits.max_unpacked_bytes);
  upload lying;  // a header saying 4 MB for one byte of content: the archive unpacks 4 MB of zeros
  tar_builder(lying.archive).lying_file("big", 4 << 20, "x").close();
  REQUIRE(fs::file_size(lying.archive) < 64 * 1024);  // it compresses to almost nothing
  require_limit(lying, lying.extract(limits), "--max-upload-unpacked-bytes");
  CHECK(lying.sum.bytes <= limits.max_unpacked_bytes);
  upload small;  // the same archive under a limit it fits: what lands is what the header said
  tar_builder(small.archive).lying_file("big", 4 << 20, "x").close();
  REQUIRE(small.extract().is_ok());
  CHECK(fs::file_size(small.staging / "big") == 4u << 20);
}

TEST_CASE("upload_extract: an archive file over the upload limit is a limit refusal", "[upload_extract]") {
  upload_limits limits;
  limits.max_bytes = 100000;
  upload u;
  tar_builder(u.archive).file("noise", random_bytes(200000, 4)).close();
  require_limit(u, u.extract(limits), "--max-upload-bytes");
}

TEST_CASE("upload_extract: a truncated gzip is corruption", "[upload_extract]") {
  upload u;
  tar_builder(u.archive).file("a", random_bytes(200000, 5)).file("b", random_bytes(200000, 6)).close();
  auto size = fs::file_size(u.archive);
  fs::resize_file(u.archive, size / 2);
  require_corrupt(u, u.extract());
  upload v;  // cut inside the first file's data
  tar_builder(v.archive).file("a", random_bytes(200000, 7)).close();
  fs::resize_file(v.archive, 1000);
  require_corrupt(v, v.extract());
}

TEST_CASE("upload_extract: a body that is not gzip is corruption", "[upload_extract]") {
  upload u;
  test::write_file(u.archive, "this is plain text, not an archive\n");
  require_corrupt(u, u.extract());
  upload v;  // gzip, but not a tar inside
  {
    FILE* gz = ::popen(("gzip -c > " + v.archive.string()).c_str(), "w");
    REQUIRE(gz != nullptr);
    std::string text(5000, 'z');
    ::fwrite(text.data(), 1, text.size(), gz);
    REQUIRE(::pclose(gz) == 0);
  }
  require_corrupt(v, v.extract());
}

TEST_CASE("upload_extract: an empty body is corruption", "[upload_extract]") {
  upload u;
  test::write_file(u.archive, "");
  require_corrupt(u, u.extract());
}

TEST_CASE("upload_extract: an existing staging folder is refused and left alone", "[upload_extract]") {
  upload u;
  tar_builder(u.archive).file("a", "x").close();
  test::write_file(u.staging / "keep", "mine");
  auto s = u.extract();
  CHECK(s.which() == status::code::invalid_argument);
  CHECK_FALSE(is_limit_refusal(s));
  CHECK(test::read_file(u.staging / "keep") == "mine");
}

TEST_CASE("upload_extract: a tar.gz made by GNU tar of a folder lands as the folder was", "[upload_extract]") {
  upload u;
  fs::path src = u.dir.path / "src";
  test::write_file(src / "index.html", "<h1>hi</h1>\n");
  test::write_file(src / "bin/start", "#!/bin/sh\n", 0755);
  test::write_file(src / "caf\xc3\xa9/menu.txt", "utf-8 folder\n");
  fs::create_symlink("../index.html", src / "bin/home");
  std::string cmd = "tar -C " + src.string() + " -czf " + u.archive.string() + " .";
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto s = u.extract();
  INFO(s.message());
  REQUIRE(s.is_ok());
  CHECK(test::read_file(u.staging / "index.html") == "<h1>hi</h1>\n");
  CHECK(test::mode_of(u.staging / "bin/start") == 0755);
  CHECK(test::read_file(u.staging / "caf\xc3\xa9/menu.txt") == "utf-8 folder\n");
  CHECK(fs::read_symlink(u.staging / "bin/home") == "../index.html");
  CHECK(u.sum.files == 3);
  CHECK(u.sum.links == 1);
}

TEST_CASE("upload_extract: a pax tar.gz with UTF-8 names (Python's tarfile) lands with those names", "[upload_extract]") {
  upload u;
  std::string py = "import io, tarfile\n"
                   "t = tarfile.open('" + u.archive.string() + "', 'w:gz', format=tarfile.PAX_FORMAT, encoding='utf-8')\n"
                   "for name, data in (('caf\\u00e9/menu.txt', b'menu'), ('\\u65e5\\u672c.txt', b'nihon')):\n"
                   "    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))\n"
                   "l = tarfile.TarInfo('link'); l.type = tarfile.SYMTYPE; l.linkname = 'caf\\u00e9/menu.txt'; t.addfile(l)\n"
                   "t.close()\n";
  test::write_file(u.dir.path / "make.py", py);
  REQUIRE(std::system(("python3 " + (u.dir.path / "make.py").string()).c_str()) == 0);
  auto s = u.extract();
  INFO(s.message());
  REQUIRE(s.is_ok());
  CHECK(test::read_file(u.staging / "caf\xc3\xa9/menu.txt") == "menu");
  CHECK(test::read_file(u.staging / "\xe6\x97\xa5\xe6\x9c\xac.txt") == "nihon");
  CHECK(fs::read_symlink(u.staging / "link") == "caf\xc3\xa9/menu.txt");
}

namespace {
// Flips one byte of `p` at `offset` from its end.
void flip_from_end(const fs::path& p, size_t offset) {
  std::string bytes = test::read_file(p);
  REQUIRE(bytes.size() > offset);
  bytes[bytes.size() - offset] ^= 0x55;
  test::write_file(p, bytes);
}
}  // namespace

TEST_CASE("upload_extract: a gzip whose data or CRC was damaged in transit is corruption", "[upload_extract]") {
  upload u;  // random bytes are stored, not deflated: only the CRC can tell
  tar_builder(u.archive).file("a", random_bytes(200000, 8)).close();
  flip_from_end(u.archive, 100000);
  auto s = u.extract();
  require_corrupt(u, s);
  CHECK(s.message().find("gzip") != std::string::npos);
  upload v;  // the CRC-32 of the trailer itself
  tar_builder(v.archive).file("a", "small").close();
  flip_from_end(v.archive, 6);
  require_corrupt(v, v.extract());
  upload w;  // the length of the trailer
  tar_builder(w.archive).file("a", "small").close();
  flip_from_end(w.archive, 2);
  require_corrupt(w, w.extract());
}

TEST_CASE("upload_extract: data after the gzip stream is corruption", "[upload_extract]") {
  upload u;
  tar_builder(u.archive).file("a", "x").close();
  test::write_file(u.archive, test::read_file(u.archive) + "trailing junk");
  require_corrupt(u, u.extract());
}

TEST_CASE("upload_extract: a name that is not UTF-8 is refused with a message safe to show as JSON", "[upload_extract]") {
  upload u;
  tar_builder(u.archive).file("caf\xe9.txt", "latin-1 name").close();
  auto s = u.extract();
  INFO(s.message());
  REQUIRE(s.which() == status::code::invalid_argument);
  CHECK(s.message().find("not UTF-8") != std::string::npos);
  CHECK(u.sum.refused == "caf\xe9.txt");
  CHECK_NOTHROW(nlohmann::json(s.message()).dump());
  CHECK_FALSE(fs::exists(u.staging));
  upload v;  // control characters are escaped in the message
  tar_builder(v.archive).file("../a\nb", "x").close();
  auto t = v.extract();
  CHECK(t.message().find("\"../a\\nb\"") != std::string::npos);
  CHECK(t.message().find('\n') == std::string::npos);
}

namespace {
// A 1 MB tmpfs at `at` for the life of the object (tests run as root).
struct small_disk {
  fs::path at;
  bool mounted = false;
  explicit small_disk(const fs::path& p) : at(p) {
    fs::create_directories(at);
    mounted = ::mount("tmpfs", at.c_str(), "tmpfs", 0, "size=1m") == 0;
  }
  ~small_disk() {
    if (mounted) ::umount2(at.c_str(), MNT_DETACH);
  }
};
}  // namespace

TEST_CASE("upload_extract: a full disk is no_space and leaves nothing behind", "[upload_extract]") {
  upload u;
  small_disk disk(u.dir.path / "disk");
  REQUIRE(disk.mounted);
  tar_builder(u.archive).file("fits", "small").file("big", random_bytes(2 << 20, 9)).close();
  fs::path staging = disk.at / "tree";
  auto s = extract_upload(u.archive, staging, upload_limits{}, &u.sum);
  INFO(s.message());
  CHECK(s.which() == status::code::no_space);
  CHECK(s.message().find("big") != std::string::npos);
  CHECK_FALSE(fs::exists(staging));
  CHECK(fs::is_empty(disk.at));
}
