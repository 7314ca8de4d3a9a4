// Hostile uploads to a workspace project through a real `berth serve`: each is refused with a
// 4xx JSON error naming what was wrong, and leaves the live tree (hash and bytes), the
// project's events, the uploads folder and everything outside the tree exactly as they were.
#include <sys/stat.h>

#include <filesystem>
#include <random>

#include <catch2/catch.hpp>

#include "tests/integration/workspace_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using berth::test::tar_builder;

namespace {

// Upload limits small enough to reach: 4 MiB of body, 200 entries.
const std::vector<std::string> limits = {"--max-upload-bytes", "4194304", "--max-upload-files", "200"};

// A server with the workspace project `name` holding v1 (server.py, index.html, sub/page.txt).
struct hostile_env : workspace_env {
  explicit hostile_env(const std::string& project) : workspace_env(project, limits) {
    upload_ok(site_archive(tmp, {{"index.html", "v1\n"}, {"sub/page.txt", "page v1\n"}}));
  }
};

// Sends `body` as an upload and checks the refusal: `status`, `code`, the message naming
// `named` (when given), and nothing changed.
void check_refused(workspace_env& e, const std::string& body, int status, const std::string& code,
                   const std::string& named) {
  auto before = untouched::of(e);
  auto r = e.upload(body);
  INFO(r.describe() << "\n--- server log tail ---\n" << e.log_tail());
  CHECK(r.status == status);
  CHECK(r.is_json_error());
  CHECK(r.error_code() == code);
  if (!named.empty() && r.is_json_error())
    CHECK_THAT(r.body["error"]["message"].get<std::string>(), Catch::Contains(named));
  auto changed = before.changes(e);
  INFO("what the refused upload changed:\n" << changed);
  CHECK(changed.empty());
}

bool exists_no_follow(const std::string& p) {
  std::error_code ec;
  return fs::symlink_status(p, ec).type() != fs::file_type::not_found;
}

std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

}  // namespace

TEST_CASE("workspace: an upload with a ../ entry is refused and changes nothing", "[integration][workspace]") {
  hostile_env e("dotdot");
  // From <project>/.uploads/<id>/tree, three levels up is the project's own folder.
  auto body = archive_bytes(e.tmp, [](tar_builder& tb) {
    tb.file("index.html", "evil\n");
    tb.file("../../../escape.txt", "escaped\n");
  });
  check_refused(e, body, 400, "unsafe_archive", "escape.txt");
  for (auto dir : {e.project_dir(), e.project_dir() + "/.uploads", e.project_dir() + "/preview", e.srv->projects_dir()})
    CHECK_FALSE(exists_no_follow(dir + "/escape.txt"));
}

TEST_CASE("workspace: an upload with an absolute path is refused and changes nothing", "[integration][workspace]") {
  hostile_env e("absolute");
  auto target = e.tmp / "abs-escape.txt";
  auto body = archive_bytes(e.tmp, [&](tar_builder& tb) {
    tb.file("index.html", "evil\n");
    tb.file(target, "escaped\n");
  });
  check_refused(e, body, 400, "unsafe_archive", "abs-escape.txt");
  CHECK_FALSE(exists_no_follow(target));
}

TEST_CASE("workspace: an upload with a symlink to /etc/passwd and a file written through it is refused",
          "[integration][workspace]") {
  hostile_env e("symlink");
  // First a decoy outside the tree: were the link followed, only the decoy would suffer.
  auto decoy = e.tmp / "decoy.txt";
  write_file(decoy, "decoy\n");
  auto through_decoy = archive_bytes(e.tmp, [&](tar_builder& tb) {
    tb.symlink("decoy", decoy);
    tb.file("decoy", "written through the link\n");
  });
  check_refused(e, through_decoy, 400, "unsafe_archive", "decoy");
  REQUIRE(read_file(decoy) == "decoy\n");

  auto through_passwd = archive_bytes(e.tmp, [](tar_builder& tb) {
    tb.file("index.html", "evil\n");
    tb.symlink("passwd", "/etc/passwd");
    tb.file("passwd", "root::0:0::/root:/bin/sh\n");
  });
  check_refused(e, through_passwd, 400, "unsafe_archive", "passwd");
  CHECK_FALSE(exists_no_follow(e.live() + "/passwd"));
}

TEST_CASE("workspace: an upload with a hard link out of the tree is refused", "[integration][workspace]") {
  hostile_env e("hardlink");
  struct stat before {};
  REQUIRE(::stat("/etc/passwd", &before) == 0);
  auto body = archive_bytes(e.tmp, [](tar_builder& tb) {
    tb.file("index.html", "evil\n");
    tb.hardlink("users", "/etc/passwd");
  });
  check_refused(e, body, 400, "unsafe_archive", "users");
  struct stat after {};
  REQUIRE(::stat("/etc/passwd", &after) == 0);
  CHECK(after.st_nlink == before.st_nlink);  // no new name for it anywhere on its filesystem
  CHECK_FALSE(exists_no_follow(e.live() + "/users"));
}

TEST_CASE("workspace: an upload with a device node is refused", "[integration][workspace]") {
  hostile_env e("device");
  auto body = archive_bytes(e.tmp, [](tar_builder& tb) {
    tb.file("index.html", "evil\n");
    tb.device("null-dev");
  });
  check_refused(e, body, 400, "unsafe_archive", "null-dev");
  CHECK_FALSE(exists_no_follow(e.live() + "/null-dev"));
}

TEST_CASE("workspace: an upload body over --max-upload-bytes is refused before it is read",
          "[integration][workspace]") {
  hostile_env e("toolarge");
  // Larger than the general --max-body-bytes (1 MiB) but within the upload limit: accepted.
  auto big = random_bytes(2 << 20, 7);
  auto fits = e.upload_ok(site_archive(e.tmp, {{"index.html", "v2\n"}, {"big.bin", big}}));
  CHECK(fits.value("via", "") == "upload");
  REQUIRE(e.tree_files()["big.bin"] == big);

  auto before = untouched::of(e);
  // Only the head: a 6 MiB Content-Length must be refused without waiting for the body.
  raw_connection conn(e.srv->port());
  REQUIRE(conn.send("PUT /api/projects/toolarge/source HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                    token_for(e.srv->port()) +
                    "\r\nContent-Type: application/gzip\r\nContent-Length: 6291456\r\n\r\n"));
  auto r = conn.read_response(5s);
  INFO(r.describe() << "\n--- server log tail ---\n" << e.log_tail());
  CHECK(r.status == 413);
  CHECK(r.is_json_error());
  CHECK(r.error_code() == "payload_too_large");
  auto changed = before.changes(e);
  INFO("what the refused upload changed:\n" << changed);
  CHECK(changed.empty());
}

TEST_CASE("workspace: an upload whose gzip is truncated is refused", "[integration][workspace]") {
  hostile_env e("truncated");
  auto whole = site_archive(e.tmp, {{"index.html", "v2\n"}, {"data.bin", random_bytes(256 << 10, 9)}});
  check_refused(e, whole.substr(0, whole.size() / 2), 400, "bad_archive", "");
  check_refused(e, "this is not a gzip stream at all\n", 400, "bad_archive", "");
}

TEST_CASE("workspace: a tar bomb with more entries than --max-upload-files is refused", "[integration][workspace]") {
  hostile_env e("tarbomb");
  auto body = archive_bytes(e.tmp, [](tar_builder& tb) {
    tb.file("index.html", "bomb\n");
    for (int i = 0; i < 1000; ++i) tb.file("bomb/f" + std::to_string(i), "x");
  });
  check_refused(e, body, 413, "payload_too_large", "");
}
