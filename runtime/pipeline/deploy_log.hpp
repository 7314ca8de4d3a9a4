// A deployment's log: berth's own lines about it and the build's output, in one file
// (production/logs/deploy-<id>.log). Each line also goes to a listener, so that whoever follows
// the deployment gets it as it is written instead of reading the file. Thread-safe.
#pragma once
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace berth {

class deploy_log {
 public:
  using listener = std::function<void(const std::vector<std::string>& lines)>;
  explicit deploy_log(std::filesystem::path file, listener on_lines = {})
      : file_(std::move(file)), on_lines_(std::move(on_lines)) {}
  // Appends "<time> berth: <text>" to the file and hands it to the listener.
  void line(const std::string& text);
  // Lines someone else wrote to the file (the build), for the listener only.
  void written(const std::vector<std::string>& lines);
  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  listener on_lines_;
  std::mutex mu_;
};

}  // namespace berth
