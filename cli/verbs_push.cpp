// `berth push NAME [DIR]`: packs a folder and uploads it as a workspace project's source
// (PUT /api/projects/{name}/source), then, with --deploy, deploys it as `berth deploy` does.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <optional>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/client/deploy_watch.hpp"
#include "cli/client/source_pack.hpp"
#include "cli/client/verb.hpp"
#include "cli/commands.hpp"

namespace berth {

using namespace berth::cli;

namespace {

struct push_args {
  std::string name, dir = ".";
  bool deploy = false, force = false, logs = false;
};

std::string human_size(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  const char* units[] = {"KB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes) / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", v, units[u]);
}

double mb(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

// The upload's progress on stderr: a bar redrawn in place on a terminal, else one line at the end.
class upload_progress {
 public:
  explicit upload_progress(bool terminal) : terminal_(terminal) {}

  void update(uint64_t sent, uint64_t total) {
    sent_ = sent;
    total_ = total;
    auto now = clock::now();
    if (!terminal_ || (now - last_draw_ < std::chrono::milliseconds(100) && sent < total)) return;
    last_draw_ = now;
    constexpr int width = 30;
    double frac = total > 0 ? static_cast<double>(sent) / static_cast<double>(total) : 1.0;
    auto filled = static_cast<int>(frac * width);
    std::cerr << fmt::format("\r\033[Kuploading [{}{}] {:>3.0f}%  {:.1f}/{:.1f} MB  {:.1f} MB/s",
                             std::string(filled, '#'), std::string(width - filled, '-'), frac * 100, mb(sent),
                             mb(total), rate())
              << std::flush;
    drawn_ = true;
  }

  // `accepted`: the server took the upload (a refusal's own line says what happened instead).
  void finish(bool accepted) {
    if (terminal_) {
      if (drawn_) std::cerr << "\n";
    } else if (accepted) {
      std::cerr << fmt::format("uploaded {:.1f} MB in {:.1f} s ({:.1f} MB/s)\n", mb(sent_), seconds(), rate());
    }
    std::cerr << std::flush;
  }

 private:
  using clock = std::chrono::steady_clock;
  double seconds() const { return std::chrono::duration<double>(clock::now() - started_).count(); }
  double rate() const { return seconds() > 0 ? mb(sent_) / seconds() : 0.0; }

  bool terminal_;
  bool drawn_ = false;
  uint64_t sent_ = 0, total_ = 0;
  clock::time_point started_ = clock::now(), last_draw_;
};

int push(http_client& api, const push_args& args) {
  bool json_out = api.options().json;
  auto packed = pack_source(args.dir, [](const std::string& line) { std::cerr << "berth: warning: " << line << "\n"; });
  std::optional<upload_progress> progress;
  if (!json_out) progress.emplace(::isatty(STDERR_FILENO) == 1);
  auto r = api.upload(project_path(api, args.name, "/source"), packed.fd, packed.archive_bytes, "application/gzip",
                      [&](uint64_t sent, uint64_t total) {
                        if (progress) progress->update(sent, total);
                      });
  if (progress) progress->finish(r.status >= 200 && r.status <= 299);
  if (r.status < 200 || r.status > 299) throw failure_of(r, api.options());
  auto answer = json::parse(r.body, nullptr, false);
  if (!answer.is_object() || !answer.value("source", json()).is_object())
    throw failure(exit_server, "the server's answer is not the pushed source");
  auto& source = answer["source"];
  if (json_out) {
    print_json_line(answer);
  } else {
    auto files = source.value("files", json()).is_number_unsigned() ? source["files"].get<uint64_t>() : packed.files;
    auto bytes = source.value("bytes", json()).is_number_unsigned() ? source["bytes"].get<uint64_t>() : packed.bytes;
    std::cout << fmt::format("pushed {} files ({}) to {}: source {}\n", files, human_size(bytes), args.name,
                             str(source, "hash").substr(0, 12))
              << std::flush;
  }
  if (!args.deploy) return exit_ok;
  return deploy_and_follow(api, args.name, args.force, args.logs);
}

}  // namespace

void register_push_verbs(CLI::App& app) {
  static push_args args;
  auto* push_verb = app.add_subcommand("push", "upload a folder as a workspace project's source (and deploy it)");
  push_verb->add_option("NAME", args.name, "project name")->required();
  push_verb->add_option("DIR", args.dir, "the folder to push (default: the current one); honours its .berthignore");
  auto* deploy = push_verb->add_flag("--deploy", args.deploy, "then deploy it to production, as `berth deploy` does");
  push_verb->add_flag("--force", args.force, "with --deploy: deploy even when the release is the current one")
      ->needs(deploy);
  push_verb->add_flag("--logs", args.logs, "with --deploy: show the build log")->needs(deploy);
  on_run(push_verb, [](http_client& api) { return push(api, args); });
}

}  // namespace berth
