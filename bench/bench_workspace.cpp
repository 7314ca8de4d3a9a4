// bench_workspace: a 100 MB tree uploaded to a workspace project on a real `berth serve`, and
// the consistent snapshot a production deploy makes of it.
//
// The tree: `--files` (2,000) files of `--file-kb` (50) KB of random bytes (nothing compresses
// or dedups by accident) in folders of 50, plus VERSION. Two such trees, A and B (different
// bytes and VERSION), each packed once into a .tar.gz as `berth push` sends it. One berth
// (its own temp dir, a random port window) with one workspace project whose build installs
// VERSION and bench/apps/tiny_http (packed into the tree) into dist/ and whose release runs it, so a deploy's cost beyond the
// snapshot stays small. Each run (`--runs`, 5; medians reported):
//   upload      PUT /api/projects/{name}/source with the tree the workspace does not hold
//               (A, B, A, …): the body streamed to disk, extracted, every file applied to
//               preview/src, the tree hashed, the event recorded; client-side wall time from
//               the first byte sent to the answer
//   unchanged   the same archive again, right after (the tree it holds is the workspace's)
//   snapshot    a production deploy of that workspace: its `preparing` phase (ended - started,
//               server-side timestamps), the snapshot_workspace copy of the 100 MB tree
//
// Usage: bench_workspace [--runs 5] [--files 2000] [--file-kb 50] [--json FILE] [--dir PARENT]
//                        [--keep] [--berth PATH] [--tiny-http PATH] [--timeout-s 1800]
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bench/common/bench_session.hpp"
#include "bench/common/bench_trees.hpp"
#include "bench/common/berth_bench.hpp"
#include "bench/common/scale_rows.hpp"
#include "messages/event.hpp"
#include "tests/common/tar_builder.hpp"

#ifndef BERTH_BINARY
#define BERTH_BINARY ""
#endif
#ifndef BENCH_TINY_HTTP
#define BENCH_TINY_HTTP ""
#endif

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;
using berth::bench::ms_since;
using namespace std::chrono_literals;

berth::bench::session g_session{"bench_workspace"};

[[noreturn]] void fail(const std::string& what, const std::string& extra = "") { g_session.fail(what, extra); }

// One tree packed as a tar.gz at `path`; its size in bytes.
// The tree carries tiny_http itself: the build and the release run sandboxed and see only the
// system's /usr and the project's own folders, not this build directory.
uint64_t pack_tree(const std::string& path, int files, int file_kb, uint64_t seed, const std::string& version,
                   const std::string& tiny_http) {
  std::mt19937_64 rng(seed);
  std::string buf(static_cast<size_t>(file_kb) << 10, '\0');
  berth::test::tar_builder tb(path);
  tb.file("VERSION", version + "\n");
  tb.file("tiny_http", tiny_http, 0755);
  for (int i = 0; i < files; ++i) {
    berth::bench::fill_random(rng, &buf[0], buf.size());
    tb.file(fmt::format("tree/d{:03}/f{:04}.bin", i / 50, i), buf);
  }
  tb.close();
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  return static_cast<uint64_t>(in.tellg());
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The span of `name` in a deployment detail's phases, in ms (NAN when missing or open).
double phase_ms(const json& detail, const std::string& name) {
  for (auto& p : detail.value("phases", json::array())) {
    if (p.value("phase", "") != name || !p["started"].is_string() || !p["ended"].is_string()) continue;
    int64_t a = 0, b = 0;
    if (berth::parse_iso8601(p["started"].get<std::string>(), a) && berth::parse_iso8601(p["ended"].get<std::string>(), b))
      return (b - a) / 1000.0;
  }
  return NAN;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_workspace: uploading a 100 MB tree to a workspace and snapshotting it in a deploy"};
  int runs = 5, files = 2000, file_kb = 50, timeout_s = 1800;
  std::string json_file, berth = BERTH_BINARY, tiny = BENCH_TINY_HTTP;
  const char* tmp = std::getenv("TMPDIR");
  std::string parent = tmp && *tmp ? tmp : "/tmp";
  bool keep = false;
  app.add_option("--runs", runs, "runs (median reported)")->check(CLI::Range(1, 1000));
  app.add_option("--files", files, "files in the tree")->check(CLI::Range(1, 100000));
  app.add_option("--file-kb", file_kb, "size of each file in KB")->check(CLI::Range(1, 1 << 20));
  app.add_option("--json", json_file, "write the rows as JSON here");
  app.add_option("--dir", parent, "parent of the temp dir (the filesystem measured)");
  app.add_flag("--keep", keep, "keep the temp dir");
  app.add_option("--berth", berth, "berth binary");
  app.add_option("--tiny-http", tiny, "tiny_http binary");
  app.add_option("--timeout-s", timeout_s, "overall time limit")->check(CLI::Range(10, 86400));
  CLI11_PARSE(app, argc, argv);
  g_session.guard(std::chrono::seconds(timeout_s));

  auto dir = g_session.open_dir(parent, keep);
  double tree_mb = files * static_cast<double>(file_kb) / 1024.0;
  std::fprintf(stderr, "packing two trees of %d files, %.0f MB each...\n", files, tree_mb);
  std::vector<std::string> archives;
  for (int t = 0; t < 2; ++t) {
    auto path = dir + fmt::format("/tree-{}.tar.gz", t);
    auto size = pack_tree(path, files, file_kb, 100 + t, t == 0 ? "A" : "B", slurp(tiny));
    std::fprintf(stderr, "  %s: %.1f MB\n", path.c_str(), size / 1048576.0);
    archives.push_back(slurp(path));
  }

  uint16_t port = berth::bench::free_port();
  berth::bench::api_client api(port);
  api.cli.set_read_timeout(600, 0);
  api.cli.set_write_timeout(600, 0);
  std::vector<std::string> args = {berth, "serve", "--listen", fmt::format("127.0.0.1:{}", port), "--data",
                                   dir + "/data", "--switch-mode", "direct", "--stop-grace-ms", "500"};
  auto window = berth::bench::port_window_args(std::random_device{}());
  args.insert(args.end(), window.begin(), window.end());
  g_session.start_berth(args, api);

  const std::string name = "bench-workspace";
  json health = {{"path", "/health"}, {"timeout_s", 10}, {"interval_ms", 10}, {"min_healthy_s", 0}};
  json manifest = {{"name", name},
                   {"source", {{"workspace", json::object()}}},
                   {"build", {{"command", {"install", "-D", "-t", "dist", "VERSION", "tiny_http"}}, {"artifacts", {"dist"}}}},
                   {"production", {{"command", {"dist/tiny_http", "dist/VERSION"}}, {"health", health}, {"keep", 3}}}};
  if (auto [code, body] = api.post("/api/projects", manifest); code != 201)
    fail(fmt::format("POST /api/projects: HTTP {}", code), body.dump());

  auto upload = [&](const std::string& body, double* ms) {
    auto t0 = steady::now();
    auto r = api.cli.Put(("/api/projects/" + name + "/source").c_str(), body, "application/gzip");
    *ms = ms_since(t0);
    auto [code, answer] = berth::bench::api_client::convert(r);
    if (code != 200) fail(fmt::format("PUT source: HTTP {}", code), answer.dump());
    return answer.at("source");
  };

  std::string tree = fmt::format("{} files of {} KB random bytes, {:.0f} MB; tar.gz of {:.0f} MB", files, file_kb,
                                 tree_mb, archives[0].size() / 1048576.0);
  auto up = berth::bench::berth_row("upload a 100 MB tree (PUT, extract, apply)", "ms", "",
                                    "PUT …/source of a tree other than the workspace's (every file new): body streamed to "
                                    "disk, extracted, applied, hashed, recorded; " + tree);
  auto again = berth::bench::berth_row("upload an unchanged 100 MB tree again", "ms", "",
                                       "the same archive as the workspace holds, PUT again; " + tree);
  auto snap = berth::bench::berth_row("snapshot a 100 MB workspace in a deploy", "ms", "",
                                      "the deploy's preparing phase (server-side span): the consistent copy of preview/src; " + tree);
  for (int r = 0; r < runs; ++r) {
    const auto& body = archives[r % 2];
    double ms = 0;
    auto first = upload(body, &ms);
    up.runs.push_back(ms);
    auto second = upload(body, &ms);
    again.runs.push_back(ms);
    if (second.value("hash", "") != first.value("hash", ""))
      fail("the same archive gave two hashes", first.dump() + " " + second.dump());

    auto [code, queued] = api.post("/api/projects/" + name + "/deployments", json::object());
    if (code != 202) fail(fmt::format("deploy: HTTP {}", code), queued.dump());
    auto id = queued.at("id").get<std::string>();
    json detail;
    for (auto until = steady::now() + 600s;; std::this_thread::sleep_for(50ms)) {
      auto [c, d] = api.get("/api/deployments/" + id);
      detail = d;
      auto st = d.value("status", "");
      if (c == 200 && (st == "completed" || st == "unchanged" || st == "failed" || st == "cancelled")) break;
      if (steady::now() > until) fail("deploy did not end within 600 s", d.dump());
    }
    if (detail.value("status", "") != "completed") fail("deploy did not complete", detail.dump());
    auto source_hash = detail.value("resources", json::object()).value("source_hash", "");
    if (source_hash != first.value("hash", ""))
      fail("the deployment's source_hash is not the uploaded tree's", detail.dump());
    snap.runs.push_back(phase_ms(detail, "preparing"));
    std::fprintf(stderr, "run %d: upload %.0f ms, again %.0f ms, snapshot %.0f ms (deploy %s)\n", r, up.runs.back(),
                 again.runs.back(), snap.runs.back(), id.c_str());
  }
  g_session.final_cleanup();

  std::vector<berth::bench::figure_row> rows = {up, again, snap};
  berth::bench::print_rows(rows);
  std::string error;
  if (!json_file.empty() && !berth::bench::write_rows(json_file, "bench_workspace", rows, &error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  return 0;
}
