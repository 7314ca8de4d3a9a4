// A deployment's log: berth's own lines about it and the build's output, in one file
// (production/logs/deploy-<id>.log). The last lines are also kept in memory (what a detail
// answer shows while the deployment runs), and each line goes to a listener, so that whoever
// follows the deployment gets it as it is written instead of reading the file. Thread-safe.
//
// Every line is masked (mask_secrets, runtime/logs/mask.hpp) before it goes anywhere: the file,
// the memory and the listener only ever see `********` where a secret value was. Masking here,
// at write time, keeps secret values off the disk and out of every stream at once; the build's
// output reaches this class as whole lines (build_output), so a value the build wrote in two
// pieces is still found.
#pragma once
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/logs/mask.hpp"
#include "runtime/logs/rotating_file.hpp"

namespace berth {

class deploy_log {
 public:
  using listener = std::function<void(const std::vector<std::string>& lines)>;
  // The file is opened (O_APPEND, created) at the first line and stays open; it rotates by
  // size like the apps' logs (--log-max-bytes × --log-max-files), so a build that prints
  // without end cannot fill the disk.
  explicit deploy_log(std::filesystem::path file, listener on_lines = {})
      : file_(std::move(file)), on_lines_(std::move(on_lines)) {}
  ~deploy_log();
  deploy_log(const deploy_log&) = delete;
  deploy_log& operator=(const deploy_log&) = delete;
  // The secrets to hide from every later line (the project's, read when the deploy starts).
  void set_mask(secret_mask mask);
  // A copy of the mask, for whoever cuts a stream into lines before handing them here.
  secret_mask mask();
  // Appends "<time> berth: <text>" (masked) to the file and hands it to the listener.
  void line(const std::string& text);
  // Complete lines of the build's output: masked, appended to the file as they are, kept and
  // handed to the listener.
  void build_output(const std::vector<std::string>& lines);
  // The last lines written (at most `kept_lines`), oldest first.
  std::vector<std::string> last_lines();
  const std::filesystem::path& file() const { return file_; }

  static constexpr size_t kept_lines = 50;

 private:
  void write(const std::vector<std::string>& lines);  // mu_ held
  void keep(const std::vector<std::string>& lines);   // mu_ held

  std::filesystem::path file_;
  std::unique_ptr<rotating_file> out_;  // opened at the first line
  listener on_lines_;
  std::mutex mu_;
  secret_mask mask_;
  std::deque<std::string> last_;
};

}  // namespace berth
