// A source change a crash stopped half-way: berth finishes it at its next start, before anything
// else touches the project, and records the tree it leaves (via "recovered"); an upload the crash
// cut off while it was being received is removed. The half-applied state is made with the
// apply's own steps (runtime/workspace/tree_apply.hpp), then one entry moved by hand, as a kill
// between two renames leaves it.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include <catch2/catch.hpp>

#include "runtime/workspace/tree_apply.hpp"
#include "runtime/workspace/tree_change.hpp"
#include "runtime/workspace/upload_extract.hpp"
#include "tests/integration/workspace_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST_CASE("workspace: an upload a crash stopped half-way is finished at the restart", "[integration][workspace]") {
  workspace_env e("halfway");
  e.upload_ok(site_archive(e.tmp, {{"index.html", "v1\n"}, {"old.txt", "only in v1\n"}}));
  auto before = e.event_count();
  e.srv->kill9();

  // The new tree staged and its intent written, as apply_tree_change does before its first rename.
  auto archive = e.tmp / "v2.tar.gz";
  write_file(archive, site_archive(e.tmp, {{"index.html", "v2\n"}, {"new.txt", "only in v2\n"}}));
  fs::path staging;
  REQUIRE(berth::new_staging(e.uploads(), &staging).is_ok());
  berth::upload_summary summary;
  REQUIRE(berth::extract_upload(archive, staging / "tree", {}, &summary).is_ok());
  berth::tree_detail::apply_intent intent;
  intent.change.what = berth::tree_change::kind::replace_tree;
  intent.change.staging = staging;
  intent.begun_ns = 1;
  berth::tree_detail::fd_guard tree_dir(::open((staging / "tree").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(berth::tree_detail::prepare_new_tree(tree_dir.fd, staging / "tree", {}, &intent.entries).is_ok());
  berth::tree_detail::fd_guard staging_dir(::open(staging.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(berth::tree_detail::write_intent(staging_dir.fd, staging, intent).is_ok());
  // ... and killed after its first rename.
  REQUIRE(std::rename((staging / "tree/index.html").c_str(), (e.live() + "/index.html").c_str()) == 0);
  // An upload cut off while it was received: a staging folder with part of an archive.
  fs::path cut;
  REQUIRE(berth::new_staging(e.uploads(), &cut).is_ok());
  write_file(cut / "upload.tar.gz", "\x1f\x8b partial");

  e.srv->start();  // no command: the sweep at start wakes the project, which finishes the change
  json recovered;
  REQUIRE(eventually(
      [&] {
        for (auto& ev : e.events())
          if (ev.value("type", "") == "source_updated" && ev.value("data", json::object()).value("via", "") == "recovered")
            return recovered = ev.value("data", json::object()), true;
        return false;
      },
      20s));
  INFO("--- server log tail ---\n" << e.log_tail());
  auto files = e.tree_files();
  CHECK(files["index.html"] == "v2\n");
  CHECK(files["new.txt"] == "only in v2\n");
  CHECK(files.count("old.txt") == 0);
  CHECK(files.count("server.py") == 1);
  CHECK(e.hash() == recovered.value("hash", ""));
  CHECK(e.event_count() == before + 1);
  CHECK(e.upload_leftovers().empty());
}
