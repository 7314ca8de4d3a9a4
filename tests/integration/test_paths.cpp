// Paths stay inside the data dir, through a real `berth serve` with the sample site
// (tests/apps/site): symlinks in a source tree are copied as links and never followed, a
// build whose artifacts link outside the build dir fails in packaging with nothing left
// behind, artifact paths that leave the build are refused up front, and a deploy writes
// nothing outside the project's folder (and the event log).
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kMarker = "outside-MARKER-31c9";

// path (relative to root) -> what it is: kind, mode, size and mtime of files, link targets.
// Directories are listed without their mtimes; `skip` (relative paths) are left out whole.
std::map<std::string, std::string> tree_state(const std::string& root, const std::vector<std::string>& skip) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    auto rel = fs::relative(it->path(), root, ec).string();
    if (std::find(skip.begin(), skip.end(), rel) != skip.end()) {
      it.disable_recursion_pending();
      continue;
    }
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    std::string what;
    if (S_ISLNK(st.st_mode)) {
      what = "link -> " + fs::read_symlink(it->path(), ec).string();
      it.disable_recursion_pending();
    } else if (S_ISDIR(st.st_mode)) {
      what = "dir " + std::to_string(st.st_mode & 07777);
    } else {
      what = "file " + std::to_string(st.st_mode & 07777) + " size " + std::to_string(st.st_size) +
             " mtime " + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    }
    out[rel] = what;
  }
  return out;
}

std::string differences(const std::map<std::string, std::string>& before,
                        const std::map<std::string, std::string>& after) {
  std::string s;
  for (auto& [k, v] : before) {
    auto it = after.find(k);
    if (it == after.end()) s += "\n  removed " + k + " (" + v + ")";
    else if (it->second != v) s += "\n  changed " + k + ": " + v + " -> " + it->second;
  }
  for (auto& [k, v] : after)
    if (!before.count(k)) s += "\n  added " + k + " (" + v + ")";
  return s;
}

// Regular files under root (links not followed) whose bytes contain `needle`.
std::vector<std::string> files_containing(const std::string& root, const std::string& needle) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it->is_symlink(ec)) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && read_file(it->path().string()).find(needle) != std::string::npos)
      out.push_back(it->path().string());
  }
  return out;
}

std::string link_of(const std::string& p) {
  std::error_code ec;
  if (!fs::is_symlink(fs::symlink_status(p, ec))) return "(not a symlink)";
  return fs::read_symlink(p, ec).string();
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

struct paths_env {
  temp_dir tmp;
  std::unique_ptr<server> srv;
  paths_env() { srv = std::make_unique<server>(tmp.path(), deploy_server_options()); }
  client& api() { return srv->api(); }
  std::string project_dir(const std::string& name) { return srv->projects_dir() + "/" + name; }
  json wait(const std::string& id) {
    auto d = wait_done(api(), id, 60s);
    INFO(brief(d));
    REQUIRE(is_terminal_status(d.value("status", "")));
    return d;
  }
  std::string deploy(const std::string& name, bool force = false) {
    auto r = force ? api().post("/api/projects/" + name + "/deployments", json{{"force", true}})
                   : api().post("/api/projects/" + name + "/deployments", std::string{});
    INFO(r.describe());
    REQUIRE(r.status == 202);
    return r.body.at("id");
  }
};

}  // namespace

TEST_CASE("paths - source symlinks leading outside are copied as links and a deploy writes only in its project folder",
          "[integration][paths]") {
  paths_env e;
  auto& tmp = e.tmp;
  // Outside the source: a folder with a marker file, and /etc/passwd.
  fs::create_directories(tmp / "outside/sub");
  write_file(tmp / "outside/marker.txt", kMarker + "\n");
  write_file(tmp / "outside/sub/more.txt", kMarker + " again\n");
  auto passwd_line = first_line(read_file("/etc/passwd"));
  REQUIRE(!passwd_line.empty());

  auto site = make_site(tmp, "linky-src", "1");
  fs::create_symlink("/etc/passwd", site + "/passwd");
  fs::create_directory_symlink(tmp / "outside", site + "/outside-dir");
  fs::create_symlink("../outside/marker.txt", site + "/outside-rel");
  fs::create_symlink(site + "/server.py", site + "/abs-inside");  // absolute, but inside the source
  fs::create_directories(site + "/static");
  fs::create_symlink(site + "/build.py", site + "/static/abs-inside-deeper");

  const std::string name = "linky";
  auto created = e.api().post("/api/projects", site_manifest(name, site));
  INFO(created.describe());
  REQUIRE(created.status == 201);

  // Everything outside the project's folder and the event log, before anything ran.
  std::vector<std::string> skip{"data/projects/" + name, "data/events", "server.log"};
  auto before = tree_state(tmp.path(), skip);
  REQUIRE(before.count("outside/marker.txt"));
  REQUIRE(before.count("linky-src/server.py"));

  auto preview = e.api().post("/api/projects/" + name + "/preview/start", std::string{});
  INFO(preview.describe());
  REQUIRE(preview.status == 200);
  REQUIRE(preview.body.value("status", "") == "running");

  // The preview copy: links as links, with their targets; never the files they point to.
  auto src = e.project_dir(name) + "/preview/src";
  CHECK(link_of(src + "/passwd") == "/etc/passwd");
  CHECK(link_of(src + "/outside-dir") == tmp / "outside");
  CHECK(link_of(src + "/outside-rel") == "../outside/marker.txt");
  // An absolute link into the source now points at the copy's own file, not the live source.
  CHECK(link_of(src + "/abs-inside") == "server.py");
  CHECK(link_of(src + "/static/abs-inside-deeper") == "../build.py");
  CHECK(fs::is_regular_file(src + "/server.py"));

  auto id = e.deploy(name);
  auto d = e.wait(id);
  INFO(brief(d));
  REQUIRE(d.value("status", "") == "completed");
  auto forced = e.wait(e.deploy(name, true));
  REQUIRE(forced.value("status", "") == "completed");
  CHECK(fetch(created.body.at("ports").at("production").get<uint16_t>(), "/").body == "release 1\n");

  // Not one byte from outside made it into the data dir.
  auto with_marker = files_containing(e.srv->data_dir(), kMarker);
  auto with_passwd = files_containing(e.srv->data_dir(), passwd_line);
  std::string found;
  for (auto& f : with_marker) found += "\n  " + f;
  for (auto& f : with_passwd) found += "\n  " + f;
  INFO("files with the marker or /etc/passwd's first line:" << found);
  CHECK(with_marker.empty());
  CHECK(with_passwd.empty());

  // Nothing outside the project's folder (and the log) changed: not the source (the build ran
  // in a copy), not the folder the source links to, not the rest of the data dir.
  auto after = tree_state(tmp.path(), skip);
  INFO("differences:" << differences(before, after));
  CHECK(before == after);
  CHECK(!fs::exists(site + "/dist"));

  // Deleting the project removes its folder, links and all, and nothing they point to.
  auto del = e.api().del("/api/projects/" + name);
  INFO(del.describe());
  CHECK(del.status == 200);
  CHECK(eventually([&] { return !fs::exists(e.project_dir(name)); }, 10s));
  CHECK(read_file(tmp / "outside/marker.txt") == kMarker + "\n");
  CHECK(read_file(tmp / "outside/sub/more.txt") == kMarker + " again\n");
  CHECK(first_line(read_file("/etc/passwd")) == passwd_line);
  auto at_end = tree_state(tmp.path(), skip);
  INFO("differences after delete:" << differences(before, at_end));
  CHECK(before == at_end);
}

TEST_CASE("paths - a build whose artifacts link outside the build dir fails in packaging and leaves nothing behind",
          "[integration][paths]") {
  paths_env e;
  auto site = make_site(e.tmp, "evil-src", "1");
  const std::string name = "evil";
  // The build makes dist/evil a link to whatever EVIL (in the source) names, when it exists.
  auto m = site_manifest(name, site);
  m["build"]["command"] = {"sh", "-c", "python3 build.py && if [ -f EVIL ]; then ln -s \"$(cat EVIL)\" dist/evil; fi"};
  auto created = e.api().post("/api/projects", m);
  INFO(created.describe());
  REQUIRE(created.status == 201);
  uint16_t port = created.body.at("ports").at("production");
  auto prod_dir = e.project_dir(name) + "/production";

  auto good = e.wait(e.deploy(name));
  REQUIRE(good.value("status", "") == "completed");
  std::string v1 = good["resources"].value("hash", "");
  REQUIRE(release_dirs(prod_dir) == std::set<std::string>{v1});

  for (std::string target : {std::string("/etc"), std::string("/etc/passwd"), std::string("../../../../../../../../../etc"),
                             e.tmp.path()}) {
    INFO("dist/evil -> " << target);
    set_site(site, "VERSION", "2");
    write_file(site + "/EVIL", target);
    auto before_events = e.srv->event_count();
    auto d = e.wait(e.deploy(name));
    INFO(brief(d));
    CHECK(d.value("status", "") == "failed");
    CHECK(d["error"].value("code", "") == "package_failed");
    CHECK(d["error"].value("phase", "") == "packaging");
    CHECK_THAT(d["error"].value("message", ""), Catch::Contains("dist/evil"));
    CHECK(e.srv->event_count() > before_events);
    // Nothing left behind: no new release folder, no temp folder, no build workspace, and the
    // old release still serves as current.
    CHECK(release_dirs(prod_dir) == std::set<std::string>{v1});
    CHECK(current_link(prod_dir) == v1);
    CHECK(tmp_leftovers(e.project_dir(name)).empty());
    CHECK(list_dir(prod_dir + "/builds").empty());
    auto prod = e.api().get("/api/projects/" + name + "/production");
    CHECK(prod.body.value("current", "") == v1);
    CHECK(prod.body.value("status", "") == "running");
    CHECK(fetch(port, "/").body == "release 1\n");
    auto history = e.api().get("/api/projects/" + name + "/production/history");
    REQUIRE(history.body["releases"].size() == 1);
  }
  // The same source without the link deploys.
  fs::remove(site + "/EVIL");
  auto fixed = e.wait(e.deploy(name));
  INFO(brief(fixed));
  CHECK(fixed.value("status", "") == "completed");
  CHECK(fetch(port, "/").body == "release 2\n");
}

TEST_CASE("paths - artifact paths that leave the build dir are refused before anything is recorded",
          "[integration][paths]") {
  paths_env e;
  auto site = make_site(e.tmp, "arty-src", "1");
  auto ok = site_manifest("arty", site);
  REQUIRE(e.api().post("/api/projects", ok).status == 201);
  for (std::string artifact : {"../../etc", "/etc", "dist/../../etc", "./../x", "..", "dist/../.."}) {
    INFO("artifact " << artifact);
    auto events = e.srv->event_count();
    auto m = site_manifest("arty-two", site);
    m["build"]["artifacts"] = {"dist", artifact};
    auto r = e.api().post("/api/projects", m);
    INFO(r.describe());
    CHECK(r.status == 400);
    CHECK(r.error_code() == "invalid_manifest");
    CHECK(!fs::exists(e.project_dir("arty-two")));
    m["name"] = "arty";
    auto u = e.api().put("/api/projects/arty", m);
    INFO(u.describe());
    CHECK(u.status == 400);
    CHECK(e.srv->event_count() == events);
  }
  // The project kept its artifacts.
  auto p = e.api().get("/api/projects/arty");
  CHECK(p.body["manifest"]["build"]["artifacts"] == json({"dist"}));
}
