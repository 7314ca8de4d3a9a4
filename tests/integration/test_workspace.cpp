// Workspace projects through a real `berth serve` with the sample file server
// (tests/apps/workspace): preview/src is the source of truth, uploaded whole, edited in place
// while the preview serves it, shipped by a deploy that records its hash; seeds copied once;
// a kill -9 during an upload; a deploy of a tree that never stops changing.
#include <sys/socket.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/integration/workspace_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

bool is_hex64(const json& j) {
  if (!j.is_string()) return false;
  auto s = j.get<std::string>();
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The entry of a GET …/source listing with `path` (null when absent).
json entry(const json& listing, const std::string& path) {
  for (auto& e : listing.value("entries", json::array()))
    if (e.value("path", "") == path) return e;
  return nullptr;
}

json preview_of(workspace_env& e) {
  auto r = e.api().get("/api/projects/" + e.name);
  REQUIRE(r.status == 200);
  return r.body.at("environments").at("preview");
}

std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// What an editor running as root leaves: the content, mode 0644 whatever the umask.
void edit_file(const std::string& path, const std::string& content) {
  write_file(path, content);
  fs::permissions(path, fs::perms(0644));
}

// Bytes of the regular files under `dir` (a partial upload being streamed to disk).
uint64_t bytes_under(const std::string& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec)) n += it->file_size(ec);
  return n;
}

}  // namespace

TEST_CASE("workspace: an uploaded tree edited in place is served live by the preview and shipped by a deploy",
          "[integration][workspace]") {
  workspace_env e("live");
  auto v1 = e.upload_ok(site_archive(e.tmp, {{"index.html", "v1\n"}, {"sub/page.txt", "page v1\n"}}));
  INFO("upload: " << v1.dump());
  CHECK(v1.value("via", "") == "upload");
  CHECK(is_hex64(v1.value("hash", json())));
  CHECK(v1.value("files", 0) == 3);
  CHECK(v1.value("bytes", uint64_t{0}) == workspace_app().size() + 3 + 8);
  auto listing = e.source();
  INFO("listing: " << listing.dump());
  CHECK(listing.value("hash", "") == v1.value("hash", ""));
  CHECK(listing.value("recorded", json()).value("via", "") == "upload");
  CHECK(listing.value("recorded", json()).value("hash", "") == v1.value("hash", ""));
  auto index = entry(listing, "index.html");
  CHECK(index.value("type", "") == "file");
  CHECK(index.value("size", 0) == 3);
  CHECK(index.value("mode", "") == "0644");
  CHECK(is_hex64(index.value("sha256", json())));
  CHECK(entry(listing, "sub").value("type", "") == "dir");
  CHECK(entry(listing, "sub/page.txt").value("size", 0) == 8);

  auto pv = e.api().post("/api/projects/live/preview/start", std::string{});
  INFO(pv.describe() << "\n--- server log tail ---\n" << e.log_tail());
  REQUIRE(pv.status == 200);
  uint16_t port = pv.body.at("port");
  auto pid = pv.body.at("pid");
  CHECK(fetch(port, "/index.html").body == "v1\n");

  // An editor's save: a temp file in the same folder renamed over the original.
  edit_file(e.live() + "/.index.html.swp", "v2 renamed\n");
  fs::rename(e.live() + "/.index.html.swp", e.live() + "/index.html");
  CHECK(eventually([&] { return fetch(port, "/index.html").body == "v2 renamed\n"; }, 5s));
  // A plain overwrite of the file itself.
  {
    std::ofstream f(e.live() + "/sub/page.txt", std::ios::trunc);  // keeps the file's inode and mode
    f << "page v3 in place\n";
  }
  CHECK(eventually([&] { return fetch(port, "/sub/page.txt").body == "page v3 in place\n"; }, 5s));
  CHECK(preview_of(e).value("pid", json()) == pid);  // the same process: no restart

  auto edited = e.source();
  CHECK(edited.value("hash", "") != v1.value("hash", ""));
  auto one = e.api().get("/api/projects/live/source/sub/page.txt");
  INFO(one.describe());
  CHECK(one.status == 200);
  CHECK(one.raw == "page v3 in place\n");
  CHECK(one.header("X-Berth-Sha256") == entry(edited, "sub/page.txt").value("sha256", "?"));

  auto d = e.deploy();
  INFO("deploy: " << brief(d) << "\n--- server log tail ---\n" << e.log_tail());
  REQUIRE(d.value("status", "") == "completed");
  auto prod = e.production_port();
  CHECK(fetch(prod, "/index.html").body == "v2 renamed\n");
  CHECK(fetch(prod, "/sub/page.txt").body == "page v3 in place\n");
  CHECK(d.value("resources", json::object()).value("source_hash", "") == edited.value("hash", ""));
  CHECK(e.hash() == edited.value("hash", ""));

  auto rs = e.api().post("/api/projects/live/preview/restart", std::string{});
  INFO(rs.describe());
  REQUIRE(rs.status == 200);
  uint16_t port2 = rs.body.at("port");
  CHECK(rs.body.value("pid", json()) != pid);
  CHECK(fetch(port2, "/index.html").body == "v2 renamed\n");
  CHECK(fetch(port2, "/sub/page.txt").body == "page v3 in place\n");
  CHECK(e.hash() == edited.value("hash", ""));
  CHECK(read_file(e.live() + "/index.html") == "v2 renamed\n");
}

TEST_CASE("workspace: kill -9 of berth during an upload keeps the previous tree and leaves no upload behind",
          "[integration][workspace]") {
  workspace_env e("crash");
  auto v1 = e.upload_ok(site_archive(e.tmp, {{"index.html", "v1\n"}}));
  auto files_before = e.tree_files();

  auto big = site_archive(e.tmp, {{"index.html", "v2\n"}, {"big.bin", random_bytes(32 << 20, 3)}});
  raw_connection conn(e.srv->port());
  REQUIRE(conn.send("PUT /api/projects/crash/source HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                    token_for(e.srv->port()) + "\r\nContent-Type: application/gzip\r\nContent-Length: " +
                    std::to_string(big.size()) + "\r\n\r\n"));
  REQUIRE(conn.send(big.substr(0, big.size() / 2)));
  // berth streams the body to <project>/.uploads/<id>/upload.tar.gz: wait until some is there.
  INFO("--- server log tail ---\n" << e.log_tail());
  REQUIRE(eventually([&] { return bytes_under(e.uploads()) > 0; }, 10s));
  e.srv->kill9();
  e.srv->start();

  auto listing = e.source();
  CHECK(listing.value("hash", "") == v1.value("hash", ""));
  CHECK(e.tree_files() == files_before);
  std::vector<std::string> left;
  CHECK(eventually([&] { return (left = e.upload_leftovers()).empty(); }, 10s));
  std::string listed;
  for (auto& l : left) listed += "\n  " + l;
  INFO("left in .uploads after the restart:" << listed);
  CHECK(left.empty());

  auto v3 = e.upload_ok(site_archive(e.tmp, {{"index.html", "v3\n"}}));
  CHECK(e.hash() == v3.value("hash", ""));
  CHECK(e.tree_files()["index.html"] == "v3\n");
  CHECK(e.upload_leftovers().empty());
}

TEST_CASE("workspace: a seed path is copied once at create time", "[integration][workspace]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto seed = tmp / "seed";
  fs::create_directories(seed + "/sub");
  write_file(seed + "/server.py", workspace_app());
  write_file(seed + "/index.html", "seeded\n");
  write_file(seed + "/sub/page.txt", "seeded page\n");
  auto created = srv.api().post("/api/projects", workspace_manifest("seeded", {{"workspace", {{"seed", {{"path", seed}}}}}}));
  INFO(created.describe() << "\n--- server log ---\n" << srv.log());
  REQUIRE(created.status == 201);

  auto listing = srv.api().get("/api/projects/seeded/source");
  INFO(listing.describe());
  REQUIRE(listing.status == 200);
  CHECK(listing.body.value("files", 0) == 3);
  for (auto p : {"server.py", "index.html", "sub/page.txt"}) {
    INFO(p);
    CHECK(entry(listing.body, p).value("type", "") == "file");
  }
  auto live = srv.projects_dir() + "/seeded/preview/src";
  CHECK(read_file(live + "/index.html") == "seeded\n");

  // The seed is not the source: changing it later changes nothing in the workspace.
  write_file(seed + "/index.html", "changed later\n");
  write_file(seed + "/new.txt", "new\n");
  auto again = srv.api().get("/api/projects/seeded/source");
  REQUIRE(again.status == 200);
  CHECK(again.body.value("hash", "") == listing.body.value("hash", ""));
  CHECK(entry(again.body, "new.txt").is_null());
  CHECK(read_file(live + "/index.html") == "seeded\n");

  auto pv = srv.api().post("/api/projects/seeded/preview/start", std::string{});
  INFO(pv.describe());
  REQUIRE(pv.status == 200);
  CHECK(fetch(pv.body.at("port").get<uint16_t>(), "/index.html").body == "seeded\n");
}

TEST_CASE("workspace: a seed path that does not exist is refused and creates no project", "[integration][workspace]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto r = srv.api().post("/api/projects",
                          workspace_manifest("ghost", {{"workspace", {{"seed", {{"path", tmp / "no-such-dir"}}}}}}));
  INFO(r.describe());
  CHECK(r.status == 400);
  CHECK(r.is_json_error());
  CHECK(srv.api().get("/api/projects/ghost").status == 404);
  CHECK(srv.api().get("/api/projects/ghost/source").status == 404);
  std::error_code ec;
  CHECK_FALSE(fs::exists(srv.projects_dir() + "/ghost", ec));
}

TEST_CASE("workspace: a deploy while the tree keeps changing fails with source_busy and production keeps its release",
          "[integration][workspace]") {
  workspace_env e("busy");
  // A thousand files: each pass of the snapshot walks them all, long enough for the writer
  // below to change its file during every pass.
  std::map<std::string, std::string> files{{"index.html", "v1\n"}};
  for (int i = 0; i < 1000; ++i) files["data/f" + std::to_string(i) + ".txt"] = "file " + std::to_string(i) + "\n";
  e.upload_ok(site_archive(e.tmp, files));
  auto d1 = e.deploy();
  INFO("first deploy: " << brief(d1) << "\n--- server log tail ---\n" << e.log_tail());
  REQUIRE(d1.value("status", "") == "completed");
  auto prod = e.production_port();
  REQUIRE(fetch(prod, "/index.html").body == "v1\n");

  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  auto busy = e.live() + "/data/busy.txt";
  edit_file(busy, "write 0\n");  // then rewritten in place (its mode stays)
  std::thread writer([&] {
    while (!stop) {
      write_file(busy, "write " + std::to_string(++writes) + "\n");
      std::this_thread::sleep_for(1ms);
    }
  });
  json d2;
  try {
    d2 = e.deploy();
  } catch (...) {
    stop = true;
    writer.join();
    throw;
  }
  stop = true;
  writer.join();
  INFO("deploy during " << writes << " writes: " << brief(d2) << "\n--- server log tail ---\n" << e.log_tail());
  CHECK(d2.value("status", "") == "failed");
  CHECK(d2.value("error", json::object()).value("code", "") == "source_busy");
  CHECK(fetch(prod, "/index.html").body == "v1\n");
  CHECK(fetch(prod, "/data/busy.txt").status == 404);  // the busy tree was not shipped
  auto current = e.api().get("/api/projects/busy/production").body.value("current", json());
  CHECK(current == d1.value("resources", json::object()).value("hash", json()));

  auto last = read_file(busy);
  auto d3 = e.deploy();
  INFO("deploy after the writer stopped: " << brief(d3));
  REQUIRE(d3.value("status", "") == "completed");
  CHECK(fetch(prod, "/data/busy.txt").body == last);
  CHECK(d3.value("resources", json::object()).value("source_hash", "") == e.hash());
}
