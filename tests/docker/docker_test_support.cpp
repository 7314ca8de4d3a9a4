#include "tests/docker/docker_test_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include <httplib.h>

#include "runtime/docker/docker_runtime.hpp"

namespace berth::dk {

std::shared_ptr<docker_engine> test_engine() { return std::make_shared<docker_engine>(it::test_docker_host()); }

scratch::scratch(const std::string& tag) {
  static std::atomic<int> n{0};
  dir = std::filesystem::temp_directory_path() /
        ("berth-dk-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
}

scratch::~scratch() {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

void write_httpd_release(const std::filesystem::path& folder, const std::string& body, const std::string& dockerfile) {
  std::filesystem::create_directories(folder);
  std::ofstream(folder / "index.html") << body;
  if (!dockerfile.empty()) std::ofstream(folder / "Dockerfile") << dockerfile;
}

std::vector<std::string> httpd_command() { return {"sh", "-c", "exec httpd -f -p $PORT -h /app"}; }

std::string http_get(uint16_t port, const std::string& path, int tries) {
  for (int i = 0; i < tries; ++i) {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(1);
    c.set_read_timeout(2);
    if (auto r = c.Get(path.c_str()); r && r->status == 200) return r->body;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "";
}

project_cleanup::~project_cleanup() { make_docker_runtime(engine, {data_dir, "", {}})->remove_project(project); }

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace berth::dk
