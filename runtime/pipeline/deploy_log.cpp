#include "runtime/pipeline/deploy_log.hpp"

#include <chrono>

#include "messages/event.hpp"

namespace berth {

void deploy_log::set_mask(secret_mask mask) {
  std::lock_guard<std::mutex> lock(mu_);
  mask_ = std::move(mask);
}

secret_mask deploy_log::mask() {
  std::lock_guard<std::mutex> lock(mu_);
  return mask_;
}

void deploy_log::line(const std::string& text) {
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> lines{iso8601(now) + " berth: " + mask_secrets(text, mask_)};
  write(lines);
  keep(lines);
}

void deploy_log::build_output(const std::vector<std::string>& lines) {
  if (lines.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto masked = mask_secrets(lines, mask_);
  write(masked);
  keep(masked);
}

deploy_log::~deploy_log() = default;

void deploy_log::write(const std::vector<std::string>& lines) {
  if (!out_) {
    auto file = std::make_unique<rotating_file>(file_.string(), app_log_rotation());
    if (!file->open()) return;  // a line that cannot be written is still kept and handed to the listener
    out_ = std::move(file);
  }
  std::string text;
  for (auto& l : lines) text += l + '\n';
  (void)out_->write(text.data(), text.size());
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
