#include "runtime/pipeline/deploy_log.hpp"

#include <chrono>
#include <fstream>

#include "messages/event.hpp"

namespace berth {

void deploy_log::line(const std::string& text) {
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  auto stamped = iso8601(now) + " berth: " + text;
  std::lock_guard<std::mutex> lock(mu_);
  std::ofstream(file_, std::ios::app) << stamped << '\n';
  if (on_lines_) on_lines_({stamped});
}

void deploy_log::written(const std::vector<std::string>& lines) {
  if (lines.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (on_lines_) on_lines_(lines);
}

}  // namespace berth
