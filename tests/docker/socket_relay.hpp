// A unix-socket relay in front of the real engine, for tests of what the driver does when its
// connection to the engine breaks: bytes pass through unchanged (the engine is still the real
// one); cut() drops every connection and stops listening, resume() listens again.
#pragma once
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace berth::dk {

class socket_relay {
 public:
  socket_relay(std::string listen_path, std::string engine_path);
  ~socket_relay();
  void cut();
  void resume();

 private:
  void accept_loop(int listener);
  void pump(int a, int b);

  std::string path_, engine_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::atomic<bool> up_{false};
  int listener_ = -1;
};

}  // namespace berth::dk
