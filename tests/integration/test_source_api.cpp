// The workspace source API through a real `berth serve` (http/routes_source.cpp): uploads of a
// tar.gz, the live tree listed and read, single files written and removed, and every refusal a
// 4xx JSON error that leaves the tree as it was and nothing under <project>/.uploads.
#include <filesystem>
#include <set>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "tests/common/tar_builder.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
using berth::test::read_file_bytes;
using berth::test::tar_builder;

namespace {

json workspace_manifest(const std::string& name) {
  return {{"name", name},
          {"source", {{"workspace", json::object()}}},
          {"preview", {{"command", {"python3", "server.py"}}, {"health", {{"path", "/"}, {"interval_ms", 50}}}}}};
}

std::string app_server() { return read_file(std::string(BERTH_TEST_APPS) + "/hello/server.py"); }

// The bytes of a .tar.gz made by `fill` (in `tmp`).
template <class Fill>
std::string archive(const temp_dir& tmp, const std::string& name, Fill fill) {
  auto path = tmp / (name + ".tar.gz");
  {
    tar_builder tar(path);
    fill(tar);
  }
  return read_file_bytes(path);
}

http_result upload(server& srv, const std::string& project, const std::string& body) {
  return srv.api().put("/api/projects/" + project + "/source", body, "application/gzip");
}

json listing(server& srv, const std::string& project) {
  auto r = srv.api().get("/api/projects/" + project + "/source");
  INFO(r.describe());
  REQUIRE(r.status == 200);
  return r.body;
}

const json* entry(const json& list, const std::string& path) {
  for (auto& e : list.at("entries"))
    if (e.at("path") == path) return &e;
  return nullptr;
}

std::set<std::string> staged(server& srv, const std::string& project) {
  return list_dir(srv.projects_dir() + "/" + project + "/.uploads");
}

bool is_hash(const json& j) {
  return j.is_string() && j.get<std::string>().size() == 64 &&
         j.get<std::string>().find_first_not_of("0123456789abcdef") == std::string::npos;
}

void create(server& srv, const json& manifest) {
  auto r = srv.api().post("/api/projects", manifest);
  INFO(r.describe());
  REQUIRE(r.status == 201);
}

}  // namespace

TEST_CASE("source api: an upload replaces the tree and GET lists it with its hash and serves its files",
          "[integration][source]") {
  temp_dir tmp;
  server srv(tmp.path());
  create(srv, workspace_manifest("shop"));
  auto v1 = archive(tmp, "v1", [](tar_builder& t) {
    t.file("server.py", app_server()).file("message.txt", "v1\n").dir("lib").file("lib/util.py", "X = 1\n", 0755);
  });
  auto r = upload(srv, "shop", v1);
  INFO(r.describe());
  REQUIRE(r.status == 200);
  auto& source = r.body.at("source");
  CHECK(source.at("via") == "upload");
  CHECK(is_hash(source.at("hash")));
  CHECK(source.at("files") == 3);
  CHECK(source.at("bytes") == app_server().size() + 3 + 6);
  CHECK(source.at("seq").get<uint64_t>() > 0);
  CHECK(source.at("updated_at").is_string());
  CHECK(staged(srv, "shop").empty());
  CHECK(read_file(srv.projects_dir() + "/shop/preview/src/message.txt") == "v1\n");

  auto list = listing(srv, "shop");
  CHECK(list.at("hash") == source.at("hash"));
  CHECK(list.at("files") == 3);
  auto* util = entry(list, "lib/util.py");
  REQUIRE(util != nullptr);
  CHECK(util->at("type") == "file");
  CHECK(util->at("mode") == "0755");
  CHECK(util->at("size") == 6);
  auto* lib = entry(list, "lib");
  REQUIRE(lib != nullptr);
  CHECK(lib->at("type") == "dir");
  CHECK(list.at("recorded").at("hash") == source.at("hash"));
  CHECK(list.at("recorded").at("via") == "upload");

  auto file = srv.api().get("/api/projects/shop/source/message.txt");
  INFO(file.describe());
  REQUIRE(file.status == 200);
  CHECK(file.raw == "v1\n");
  CHECK(file.header("Content-Type") == "application/octet-stream");
  auto* message = entry(list, "message.txt");
  REQUIRE(message != nullptr);
  CHECK(file.header("X-Berth-Sha256") == message->at("sha256"));

  // A second upload replaces the whole tree: what it does not hold is gone.
  auto v2 = archive(tmp, "v2", [](tar_builder& t) { t.file("server.py", app_server()).file("message.txt", "v2\n"); });
  auto second = upload(srv, "shop", v2);
  INFO(second.describe());
  REQUIRE(second.status == 200);
  CHECK(second.body.at("source").at("hash") != source.at("hash"));
  CHECK(second.body.at("source").at("seq").get<uint64_t>() > source.at("seq").get<uint64_t>());
  CHECK(srv.api().get("/api/projects/shop/source/lib/util.py").status == 404);
  CHECK(srv.api().get("/api/projects/shop/source/message.txt").raw == "v2\n");
  CHECK(listing(srv, "shop").at("hash") == second.body.at("source").at("hash"));
}

TEST_CASE("source api: a file written then deleted changes the hash each time and reads back",
          "[integration][source]") {
  temp_dir tmp;
  server srv(tmp.path());
  create(srv, workspace_manifest("shop"));
  REQUIRE(upload(srv, "shop", archive(tmp, "v1", [](tar_builder& t) { t.file("server.py", app_server()); })).status ==
          200);
  auto before = listing(srv, "shop").at("hash");

  auto w = srv.api().put("/api/projects/shop/source/bin/run.sh?mode=0755", std::string("#!/bin/sh\necho hi\n"),
                         "application/octet-stream");
  INFO(w.describe());
  REQUIRE(w.status == 200);
  CHECK(w.body.at("source").at("via") == "write");
  CHECK(w.body.at("source").at("path") == "bin/run.sh");
  CHECK(w.body.at("source").at("hash") != before);
  auto list = listing(srv, "shop");
  CHECK(list.at("hash") == w.body.at("source").at("hash"));
  auto* run = entry(list, "bin/run.sh");
  REQUIRE(run != nullptr);
  CHECK(run->at("mode") == "0755");
  auto back = srv.api().get("/api/projects/shop/source/bin/run.sh");
  CHECK(back.status == 200);
  CHECK(back.raw == "#!/bin/sh\necho hi\n");
  CHECK(back.header("X-Berth-Sha256") == run->at("sha256"));

  // Binary bytes and an empty file go through untouched.
  std::string binary;
  for (int i = 0; i < 70000; ++i) binary.push_back(static_cast<char>(i * 7919 % 256));
  REQUIRE(srv.api().put("/api/projects/shop/source/data.bin", binary, "application/octet-stream").status == 200);
  CHECK(srv.api().get("/api/projects/shop/source/data.bin").raw == binary);
  REQUIRE(srv.api().put("/api/projects/shop/source/empty", std::string(), "application/octet-stream").status == 200);
  auto empty = srv.api().get("/api/projects/shop/source/empty");
  CHECK(empty.status == 200);
  CHECK(empty.raw.empty());

  auto d = srv.api().del("/api/projects/shop/source/bin/run.sh");
  INFO(d.describe());
  REQUIRE(d.status == 200);
  CHECK(d.body.at("source").at("via") == "delete");
  CHECK(d.body.at("source").at("path") == "bin/run.sh");
  CHECK(srv.api().get("/api/projects/shop/source/bin/run.sh").status == 404);
  auto again = srv.api().del("/api/projects/shop/source/bin/run.sh");
  CHECK(again.status == 404);
  CHECK(again.error_code() == "not_found");
  CHECK(listing(srv, "shop").at("hash") == d.body.at("source").at("hash"));
  CHECK(staged(srv, "shop").empty());

  auto bad_mode = srv.api().put("/api/projects/shop/source/x.txt?mode=9", std::string("x"), "text/plain");
  CHECK(bad_mode.status == 400);
  CHECK(bad_mode.error_code() == "invalid_request");
}

TEST_CASE("source api: path and git projects refuse uploads and edits with 409", "[integration][source]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto src = tmp / "src";
  std::filesystem::create_directories(src);
  write_file(src + "/server.py", app_server());
  create(srv, manifest_for("by-path", src));
  create(srv, json{{"name", "by-git"}, {"source", {{"git", "https://git.example.com/shop.git"}}}});
  auto body = archive(tmp, "v1", [](tar_builder& t) { t.file("server.py", "print(1)\n"); });
  for (std::string name : {"by-path", "by-git"}) {
    INFO(name);
    auto up = upload(srv, name, body);
    INFO(up.describe());
    CHECK(up.status == 409);
    CHECK(up.error_code() == "conflict");
    CHECK(up.body.at("error").at("message").get<std::string>().find("lives elsewhere") != std::string::npos);
    auto put = srv.api().put("/api/projects/" + name + "/source/server.py", std::string("x"), "text/plain");
    CHECK(put.status == 409);
    auto del = srv.api().del("/api/projects/" + name + "/source/server.py");
    CHECK(del.status == 409);
    CHECK(staged(srv, name).empty());
  }
  CHECK(read_file(src + "/server.py") == app_server());
  auto missing = upload(srv, "nobody", body);
  CHECK(missing.status == 404);
  CHECK(missing.error_code() == "not_found");
}

TEST_CASE("source api: uploads need Content-Length and one over --max-upload-bytes is refused before it is sent",
          "[integration][source]") {
  temp_dir tmp;
  server srv(tmp.path(), [] {
    server_options o;
    o.extra_args = {"--max-upload-bytes", "100000", "--max-body-bytes", "4096"};
    return o;
  }());
  create(srv, workspace_manifest("shop"));
  const std::string auth = "Authorization: Bearer " + srv.token() + "\r\n";
  auto request = [&](const std::string& method, const std::string& target, const std::string& headers) {
    return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + headers + "\r\n";
  };
  struct limit_case {
    std::string what, bytes;
    int status;
    std::string code;
  };
  const std::vector<limit_case> cases{
      {"an upload without Content-Length", request("PUT", "/api/projects/shop/source", ""), 411, "length_required"},
      {"a file without Content-Length", request("PUT", "/api/projects/shop/source/a.txt", ""), 411,
       "length_required"},
      {"an upload over the limit", request("PUT", "/api/projects/shop/source", "Content-Length: 100001\r\n"), 413,
       "payload_too_large"},
      {"an upload over the limit with Expect: 100-continue",
       request("PUT", "/api/projects/shop/source", "Content-Length: 5000000\r\nExpect: 100-continue\r\n"), 413,
       "payload_too_large"},
      {"a file over the limit", request("PUT", "/api/projects/shop/source/big.bin", "Content-Length: 200000\r\n"),
       413, "payload_too_large"},
      {"an upload sent gzip-encoded",
       request("PUT", "/api/projects/shop/source", "Content-Length: 10\r\nContent-Encoding: gzip\r\n"), 415,
       "unsupported_media_type"},
  };
  for (auto& k : cases) {
    INFO("case: " << k.what);
    auto t0 = std::chrono::steady_clock::now();
    auto r = raw_request(srv.port(), k.bytes, 10s);
    INFO(r.describe());
    CHECK(r.status == k.status);
    CHECK(r.error_code() == k.code);
    CHECK(std::chrono::steady_clock::now() - t0 < 4s);  // answered without waiting for a body
    CHECK(r.head.find("100 Continue") == std::string::npos);
    CHECK(staged(srv, "shop").empty());
  }

  // An upload may carry more than --max-body-bytes; the other routes may not.
  std::string filler;
  for (int i = 0; i < 3000; ++i) filler += fmt::format("{:08x}", i * 2654435761u);
  auto body = archive(tmp, "big", [&](tar_builder& t) { t.file("server.py", app_server()).file("noise", filler); });
  REQUIRE(body.size() > 4096);
  REQUIRE(body.size() < 100000);
  auto ok = upload(srv, "shop", body);
  INFO(ok.describe());
  CHECK(ok.status == 200);
  auto other = srv.api().post("/api/projects", json{{"name", "other"}, {"env", {{"PAD", std::string(5000, 'p')}}}});
  CHECK(other.status == 413);
  CHECK(staged(srv, "shop").empty());
}

TEST_CASE("source api: bad archives and hostile entries get 400 or 413 and leave the tree as it was",
          "[integration][source]") {
  temp_dir tmp;
  server srv(tmp.path(), [] {
    server_options o;
    o.extra_args = {"--max-upload-files", "20"};
    return o;
  }());
  create(srv, workspace_manifest("shop"));
  REQUIRE(upload(srv, "shop", archive(tmp, "v1", [](tar_builder& t) {
                  t.file("server.py", app_server()).file("message.txt", "v1\n");
                })).status == 200);
  const auto hash = listing(srv, "shop").at("hash");
  auto good = archive(tmp, "good", [](tar_builder& t) { t.file("a", std::string(4000, 'a')); });

  struct bad_case {
    std::string what, body;
    int status;
    std::string code, named;
  };
  const std::vector<bad_case> cases{
      {"not gzip", "this is not an archive", 400, "bad_archive", ""},
      {"a truncated gzip", good.substr(0, good.size() / 2), 400, "bad_archive", ""},
      {"an entry climbing out", archive(tmp, "dots", [](tar_builder& t) { t.file("ok.txt", "1").file("../evil", "x"); }),
       400, "unsafe_archive", "../evil"},
      {"a link to /etc/passwd",
       archive(tmp, "link", [](tar_builder& t) { t.symlink("passwd", "/etc/passwd").file("passwd", "pwned"); }), 400,
       "unsafe_archive", "passwd"},
      {"more entries than --max-upload-files", archive(tmp, "bomb", [](tar_builder& t) {
         for (int i = 0; i < 50; ++i) t.file(fmt::format("f{:03}", i), "x");
       }),
       413, "payload_too_large", ""},
  };
  for (auto& k : cases) {
    INFO("case: " << k.what);
    auto r = upload(srv, "shop", k.body);
    INFO(r.describe());
    CHECK(r.status == k.status);
    CHECK(r.error_code() == k.code);
    if (!k.named.empty())
      CHECK(r.body.at("error").at("message").get<std::string>().find(k.named) != std::string::npos);
    CHECK(staged(srv, "shop").empty());
    CHECK(listing(srv, "shop").at("hash") == hash);
  }
  CHECK(read_file(srv.projects_dir() + "/shop/preview/src/message.txt") == "v1\n");
}

TEST_CASE("source api: bad paths get 400 and missing files 404", "[integration][source]") {
  temp_dir tmp;
  server srv(tmp.path());
  create(srv, workspace_manifest("shop"));
  REQUIRE(upload(srv, "shop", archive(tmp, "v1", [](tar_builder& t) {
                  t.file("server.py", app_server()).file("lib/util.py", "X = 1\n").symlink("link", "server.py");
                })).status == 200);
  const auto hash = listing(srv, "shop").at("hash");
  for (std::string path : {"..%2Fx", "lib/..%2F..%2Fx", "lib", "link", ".git/config", "a//b", "lib/"}) {
    INFO(path);
    auto get = srv.api().get("/api/projects/shop/source/" + path);
    INFO(get.describe());
    CHECK(get.status == 400);
    CHECK(get.error_code() == "invalid_request");
  }
  for (std::string path : {"..%2Fx", ".git/config", "lib/"}) {
    INFO(path);
    auto put = srv.api().put("/api/projects/shop/source/" + path, std::string("x"), "text/plain");
    CHECK(put.status == 400);
    auto del = srv.api().del("/api/projects/shop/source/" + path);
    CHECK(del.status == 400);
  }
  auto missing = srv.api().get("/api/projects/shop/source/lib/nothing.py");
  CHECK(missing.status == 404);
  CHECK(missing.error_code() == "not_found");
  CHECK(srv.api().get("/api/projects/nobody/source").status == 404);
  CHECK(listing(srv, "shop").at("hash") == hash);
  CHECK(staged(srv, "shop").empty());
}

TEST_CASE("source api: GET of a dormant project's source works after a restart", "[integration][source]") {
  temp_dir tmp;
  server srv(tmp.path());
  create(srv, workspace_manifest("shop"));
  auto up = upload(srv, "shop", archive(tmp, "v1", [](tar_builder& t) {
                     t.file("server.py", app_server()).file("message.txt", "v1\n");
                   }));
  REQUIRE(up.status == 200);
  REQUIRE(srv.terminate(10s) == 0);
  srv.start();  // the project has nothing running: it stays dormant until a command wakes it
  auto list = listing(srv, "shop");
  CHECK(list.at("hash") == up.body.at("source").at("hash"));
  CHECK(list.at("recorded").at("hash") == up.body.at("source").at("hash"));
  CHECK(list.at("recorded").at("seq") == up.body.at("source").at("seq"));
  auto file = srv.api().get("/api/projects/shop/source/message.txt");
  CHECK(file.status == 200);
  CHECK(file.raw == "v1\n");
}

TEST_CASE("source api: serve --help documents the upload limits and refuses bad ones", "[integration][source]") {
  auto help = run({"serve", "--help"}, {}, 10s);
  INFO(help.describe());
  CHECK(help.exit_code == 0);
  for (const char* opt : {"--max-upload-bytes", "--max-upload-files", "--max-upload-unpacked-bytes"}) {
    INFO(opt);
    CHECK(help.out.find(opt) != std::string::npos);
  }
  temp_dir tmp;
  auto bad = run({"serve", "--data", tmp / "data", "--listen", fmt::format("127.0.0.1:{}", free_port())},
                 {{"BERTH_MAX_UPLOAD_BYTES", "12"}}, 10s);
  INFO(bad.describe());
  CHECK(bad.exit_code != 0);
  CHECK((bad.out + bad.err).find("max_upload_bytes") != std::string::npos);
}
