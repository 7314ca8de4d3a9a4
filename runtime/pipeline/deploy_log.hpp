// A deployment's log: berth's own lines about it and the build's output, in one file
// (production/logs/deploy-<id>.log). The last lines are also kept in memory (what a detail
// answer shows while the deployment runs), and each line goes to a listener, so that whoever
// follows the deployment gets it as it is written instead of reading the file. Thread-safe.
#pragma once
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace berth {

class deploy_log {
 public:
  using listener = std::function<void(const std::vector<std::string>& lines)>;
  // The file is opened (O_APPEND, created) at the first line and stays open.
  explicit deploy_log(std::filesystem::path file, listener on_lines = {})
      : file_(std::move(file)), on_lines_(std::move(on_lines)) {}
  ~deploy_log();
  deploy_log(const deploy_log&) = delete;
  deploy_log& operator=(const deploy_log&) = delete;
  // Appends "<time> berth: <text>" to the file and hands it to the listener.
  void line(const std::string& text);
  // Lines someone else wrote to the file (the build): kept and handed to the listener.
  void written(const std::vector<std::string>& lines);
  // The last lines written (at most `kept_lines`), oldest first.
  std::vector<std::string> last_lines();
  const std::filesystem::path& file() const { return file_; }

  static constexpr size_t kept_lines = 50;

 private:
  void keep(const std::vector<std::string>& lines);  // mu_ held

  std::filesystem::path file_;
  int fd_ = -1;  // one write(2) a line: the build appends to the same file in between
  listener on_lines_;
  std::mutex mu_;
  std::deque<std::string> last_;
};

}  // namespace berth
