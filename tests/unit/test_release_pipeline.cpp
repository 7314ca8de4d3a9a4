// A deploy's packaging reuses the previous release: the real pipeline (pipeline_support.hpp)
// deploying twice, the second release sharing the unchanged files' inodes with the first.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/unit/pipeline_support.hpp"

using namespace berth;
using namespace berth::test;
namespace fs = std::filesystem;

namespace {

ino_t inode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_ino;
}

}  // namespace

TEST_CASE_METHOD(pipeline_fixture, "pipeline: a new release hard-links what it shares with the previous one",
                 "[pipeline][reuse]") {
  write_file(source / "node_modules/dep/index.js", std::string(300000, 'n'));
  std::this_thread::sleep_for(std::chrono::milliseconds(60));  // older than a clock tick: trusted
  phase end;
  auto v1 = deploy({"v1"}, &end);
  REQUIRE(end == phase::completed);
  auto v2 = deploy({"v2"}, &end);
  REQUIRE(end == phase::completed);
  auto h1 = v1->deployment().resources.value("hash", ""), h2 = v2->deployment().resources.value("hash", "");
  REQUIRE(h1 != h2);
  auto r1 = paths.production / h1, r2 = paths.production / h2;
  CHECK(inode_of(r1 / "node_modules/dep/index.js") == inode_of(r2 / "node_modules/dep/index.js"));
  CHECK(inode_of(r1 / "server.py") == inode_of(r2 / "server.py"));  // rewritten, same bytes: linked
  CHECK(inode_of(r1 / "options/VERSION") != inode_of(r2 / "options/VERSION"));
  CHECK(read_file(r2 / "options/VERSION") == "v2");
  CHECK(read_file(r1 / "options/VERSION") == "v1");
  // Never a link into the source or the build folder.
  CHECK(inode_of(r2 / "node_modules/dep/index.js") != inode_of(source / "node_modules/dep/index.js"));
  CHECK_FALSE(fs::exists(paths.build_workspace(v2->id())));
}
