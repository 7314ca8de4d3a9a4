#include "runtime/logs/log_watcher.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <thread>

namespace berth {

struct log_watcher::impl {
  mutable std::mutex mu;
  int ino = -1, stop_fd = -1;
  std::thread thread;
  std::map<int, std::set<log_signal*>> followers;  // by watch descriptor

  void run() {
    alignas(inotify_event) char buf[64 * 1024];
    for (;;) {
      pollfd fds[2] = {{ino, POLLIN, 0}, {stop_fd, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) continue;  // EINTR
      if (fds[1].revents) return;
      auto n = ::read(ino, buf, sizeof buf);
      if (n <= 0) continue;
      std::lock_guard<std::mutex> lock(mu);
      for (char* p = buf; p < buf + n;) {
        auto* e = reinterpret_cast<inotify_event*>(p);
        p += sizeof(inotify_event) + e->len;
        auto it = followers.find(e->wd);
        if (it == followers.end()) continue;
        std::string name = e->len ? std::string(e->name) : std::string();
        for (auto* s : it->second)  // PATH, PATH.N, PATH.base: all start with the file's name
          if (name.compare(0, s->file_name().size(), s->file_name()) == 0) s->notify();
      }
    }
  }
};

log_watcher& log_watcher::instance() {
  static log_watcher w;
  return w;
}

log_watcher::log_watcher() : impl_(std::make_unique<impl>()) {
  impl_->ino = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  impl_->stop_fd = ::eventfd(0, EFD_CLOEXEC);
  if (impl_->ino >= 0 && impl_->stop_fd >= 0) impl_->thread = std::thread([this] { impl_->run(); });
}

log_watcher::~log_watcher() {
  if (impl_->thread.joinable()) {
    uint64_t one = 1;
    (void)!::write(impl_->stop_fd, &one, sizeof one);
    impl_->thread.join();
  }
  if (impl_->ino >= 0) ::close(impl_->ino);
  if (impl_->stop_fd >= 0) ::close(impl_->stop_fd);
}

std::shared_ptr<log_signal> log_watcher::watch(const std::string& path) {
  std::filesystem::path p(path);
  auto dir = p.parent_path().empty() ? std::string(".") : p.parent_path().string();
  std::lock_guard<std::mutex> lock(impl_->mu);
  int wd = impl_->ino < 0 ? -1
                          : ::inotify_add_watch(impl_->ino, dir.c_str(),
                                                IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                                    IN_CLOSE_WRITE);  // the same wd again for a watched folder
  std::shared_ptr<log_signal> s(new log_signal(*this, wd, p.filename().string()));
  if (wd >= 0) impl_->followers[wd].insert(s.get());
  return s;
}

void log_watcher::forget(log_signal* s) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->followers.find(s->wd_);
  if (it == impl_->followers.end()) return;
  it->second.erase(s);
  if (it->second.empty()) {
    ::inotify_rm_watch(impl_->ino, s->wd_);
    impl_->followers.erase(it);
  }
}

size_t log_watcher::watched_folders() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->followers.size();
}

log_signal::~log_signal() {
  if (wd_ >= 0) watcher_.forget(this);
}

bool log_signal::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return changes_ != seen_; });
  bool changed = changes_ != seen_;
  seen_ = changes_;
  return changed;
}

void log_signal::notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++changes_;
  }
  cv_.notify_all();
}

}  // namespace berth
