// The Engine API client, build contexts and release images against the real engine.
#include <archive.h>
#include <archive_entry.h>

#include <chrono>
#include <fstream>
#include <map>

#include "runtime/docker/build_context.hpp"
#include "runtime/docker/images.hpp"
#include "tests/docker/docker_test_support.hpp"

using namespace berth;
using namespace berth::dk;

TEST_CASE("engine: ping, a call and a stream against the real engine", "[docker][engine]") {
  DOCKER_OR_SKIP();
  auto engine = test_engine();
  REQUIRE(engine->ping().is_ok());

  engine_reply r;
  REQUIRE(engine->call("GET", "/version", nullptr, &r).is_ok());
  CHECK(r.http == 200);
  CHECK(r.body["ApiVersion"].is_string());

  REQUIRE(engine->call("GET", "/containers/dk-no-such-container/json", nullptr, &r).is_ok());
  CHECK(r.http == 404);
  CHECK(r.error().find("dk-no-such-container") != std::string::npos);

  // A stream of JSON messages: the image list is one message, /events ends when told.
  int messages = 0;
  long http = 0;
  auto since = std::chrono::system_clock::now() - std::chrono::hours(1);
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(since.time_since_epoch()).count();
  auto started = std::chrono::steady_clock::now();
  bool stop = false;
  auto s = engine->stream_json(
      "GET", "/events?since=" + std::to_string(secs), {}, "", {},
      [&](const nlohmann::json& m) {
        ++messages;
        CHECK(m.is_object());
        return true;
      },
      [&] { return stop = std::chrono::steady_clock::now() - started > std::chrono::milliseconds(300); },
      std::chrono::milliseconds(0), &http);
  CHECK(s.is_ok());
  CHECK(http == 200);
  CHECK(stop);  // ended by `cancelled`, not by the engine
}

TEST_CASE("engine: an unreachable socket is an io_error, quickly", "[docker][engine]") {
  docker_engine engine("unix:///nonexistent/berth-dk.sock");
  auto t0 = std::chrono::steady_clock::now();
  engine_reply r;
  auto s = engine.call("GET", "/_ping", nullptr, &r);
  CHECK(s.which() == status::code::io_error);
  CHECK(s.message().find("/nonexistent/berth-dk.sock") != std::string::npos);
  CHECK(engine.ping().which() == status::code::io_error);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  CHECK(docker_engine("/var/run/x.sock").socket_path() == "/var/run/x.sock");
}

TEST_CASE("build context: a tar libarchive reads back, symlinks kept, a Dockerfile added", "[docker][context]") {
  scratch s("ctx");
  auto rel = s.dir / "release";
  std::filesystem::create_directories(rel / "sub");
  std::ofstream(rel / "app.sh") << "#!/bin/sh\necho hi\n";
  std::filesystem::permissions(rel / "app.sh", std::filesystem::perms(0700));
  std::ofstream(rel / "sub" / "data.txt") << "data";
  std::filesystem::create_symlink("sub/data.txt", rel / "link");
  auto tar = s.dir / "ctx.tar";
  REQUIRE(write_build_context(rel, "FROM x\n", tar).is_ok());

  std::map<std::string, std::string> links, bodies;
  std::map<std::string, int> modes, uids;
  archive* a = archive_read_new();
  archive_read_support_format_all(a);
  REQUIRE(archive_read_open_filename(a, tar.c_str(), 10240) == ARCHIVE_OK);
  archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(e);
    modes[name] = archive_entry_perm(e);
    uids[name] = static_cast<int>(archive_entry_uid(e));
    if (archive_entry_filetype(e) == AE_IFLNK) links[name] = archive_entry_symlink(e);
    std::string body(static_cast<size_t>(archive_entry_size(e)), '\0');
    if (!body.empty()) archive_read_data(a, body.data(), body.size());
    bodies[name] = body;
  }
  archive_read_free(a);
  CHECK(links["link"] == "sub/data.txt");
  CHECK(bodies["Dockerfile"] == "FROM x\n");
  CHECK(bodies["sub/data.txt"] == "data");
  CHECK((modes["app.sh"] & 0100) != 0);  // executable stays executable
  CHECK((modes["app.sh"] & 0004) != 0);  // readable by the container's non-root user
  CHECK(uids["app.sh"] == 0);

  // The release's own Dockerfile wins over a generated one.
  std::ofstream(rel / "Dockerfile") << "FROM mine\n";
  REQUIRE(write_build_context(rel, "FROM x\n", tar).is_ok());
  a = archive_read_new();
  archive_read_support_format_all(a);
  REQUIRE(archive_read_open_filename(a, tar.c_str(), 10240) == ARCHIVE_OK);
  int dockerfiles = 0;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK)
    if (std::string(archive_entry_pathname(e)) == "Dockerfile") ++dockerfiles;
  archive_read_free(a);
  CHECK(dockerfiles == 1);

  CHECK(write_build_context(s.dir / "missing", "", tar).which() == status::code::not_found);
}

TEST_CASE("images: generated Dockerfile, build, exists, a failing build, push, remove", "[docker][images]") {
  DOCKER_OR_SKIP();
  auto engine = test_engine();
  scratch s("img");
  project_cleanup cleanup{engine, s.dir.string(), "dk-img"};
  std::string df;
  CHECK(generated_dockerfile("", httpd_command(), &df).message() ==
        "image.base is required when the release has no Dockerfile");
  CHECK(generated_dockerfile(it::test_base_image(), {}, &df).which() == status::code::invalid_argument);
  REQUIRE(generated_dockerfile(it::test_base_image(), httpd_command(), &df).is_ok());
  CHECK(df.find("CMD [\"sh\",\"-c\",\"exec httpd -f -p $PORT -h /app\"]") != std::string::npos);

  auto rel = s.dir / "release";
  write_httpd_release(rel, "v1");
  image_build b{rel, df, release_image("dk-img", "aaaaaaaaaaaa"),
                release_image_labels("dk-img", "aaaaaaaaaaaa", "production", s.dir.string()), s.dir.string()};
  std::vector<std::string> out;
  auto sink = [&](const std::string& l) { out.push_back(l); };
  REQUIRE(build_image(*engine, b, sink, {}).is_ok());
  bool found = false;
  for (auto& l : out) found = found || l.find("Step 1/5 : FROM " + it::test_base_image()) != std::string::npos;
  for (auto& l : out) UNSCOPED_INFO(l);
  CHECK(found);
  for (auto& l : out) CHECK(l.find('\n') == std::string::npos);
  bool exists = false;
  nlohmann::json inspect;
  REQUIRE(image_exists(*engine, b.tag, &exists, &inspect).is_ok());
  CHECK(exists);
  CHECK(inspect["Config"]["Labels"]["berth.project"] == "dk-img");
  CHECK(inspect["Config"]["Labels"]["berth.data_dir"] == s.dir.string());
  // The context tar went with the build.
  CHECK(std::filesystem::is_empty(s.dir / "tmp"));

  // A failing step: the engine's words, in the output and the error.
  auto bad = s.dir / "bad";
  write_httpd_release(bad, "x", "FROM " + it::test_base_image() + "\nRUN echo dk-failing-step && false\n");
  out.clear();
  auto f = build_image(*engine, {bad, "", release_image("dk-img", "bbbbbbbbbbbb"), b.labels, s.dir.string()}, sink, {});
  CHECK(f.which() == status::code::invalid_argument);
  CHECK(f.message().find("non-zero code: 1") != std::string::npos);
  bool saw_step = false;
  for (auto& l : out) saw_step = saw_step || l == "dk-failing-step";
  CHECK(saw_step);
  REQUIRE(image_exists(*engine, release_image("dk-img", "bbbbbbbbbbbb"), &exists).is_ok());
  CHECK_FALSE(exists);

  // A Dockerfile that does not parse is the release's fault too.
  write_httpd_release(bad, "x", "FROM " + it::test_base_image() + "\nNOSUCHINSTRUCTION x\n");
  out.clear();
  f = build_image(*engine, {bad, "", release_image("dk-img", "cccccccccccc"), b.labels, s.dir.string()}, sink, {});
  CHECK(f.which() == status::code::invalid_argument);
  INFO(f.message());
  CHECK(f.message().find("unknown instruction: NOSUCHINSTRUCTION") != std::string::npos);

  // Push to the local registry.
  std::string pushed;
  out.clear();
  auto p = push_image(*engine, b.tag, it::test_registry(), "", sink, {}, &pushed);
  CHECK(p.is_ok());
  CHECK(pushed == it::test_registry() + "/berth/dk-img:aaaaaaaaaaaa");
  CHECK_FALSE(out.empty());
  CHECK(remove_image(*engine, pushed).is_ok());

  std::vector<std::string> ids;
  REQUIRE(project_images(*engine, "dk-img", s.dir.string(), &ids).is_ok());
  CHECK(ids.size() == 1);
  CHECK(remove_image(*engine, b.tag).is_ok());
  CHECK(remove_image(*engine, b.tag).is_ok());  // not there: ok
  REQUIRE(image_exists(*engine, b.tag, &exists).is_ok());
  CHECK_FALSE(exists);
  CHECK(prune_project_images(*engine, "dk-img", s.dir.string()).is_ok());
  REQUIRE(project_images(*engine, "dk-img", s.dir.string(), &ids).is_ok());
  CHECK(ids.empty());
}
