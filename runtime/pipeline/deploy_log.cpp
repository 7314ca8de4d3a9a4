#include "runtime/pipeline/deploy_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include "messages/event.hpp"

namespace berth {

void deploy_log::line(const std::string& text) {
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  auto stamped = iso8601(now) + " berth: " + text;
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) fd_ = ::open(file_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ >= 0) {
    auto out = stamped + '\n';
    ssize_t n = ::write(fd_, out.data(), out.size());
    (void)n;  // a log line that cannot be written is still handed to the listener
  }
  keep({stamped});
}

deploy_log::~deploy_log() {
  if (fd_ >= 0) ::close(fd_);
}

void deploy_log::written(const std::vector<std::string>& lines) {
  if (lines.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  keep(lines);
}

void deploy_log::keep(const std::vector<std::string>& lines) {
  last_.insert(last_.end(), lines.begin(), lines.end());
  while (last_.size() > kept_lines) last_.pop_front();
  if (on_lines_) on_lines_(lines);
}

std::vector<std::string> deploy_log::last_lines() {
  std::lock_guard<std::mutex> lock(mu_);
  return {last_.begin(), last_.end()};
}

}  // namespace berth
