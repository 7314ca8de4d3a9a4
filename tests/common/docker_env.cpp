#include "tests/common/docker_env.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "runtime/docker/engine.hpp"

namespace berth::it {
namespace {

bool overridden() {
  const char* h = std::getenv("BERTH_TEST_DOCKER_HOST");
  return h && *h;
}

// First line of a file scripts/dockerd.sh wrote into the fixture's dir; "" when missing.
std::string fixture_file(const std::string& name) {
  std::ifstream in(std::string(BERTH_TEST_DOCKERD_DIR) + "/" + name);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

std::string test_docker_host() {
  if (overridden()) return std::getenv("BERTH_TEST_DOCKER_HOST");
  return std::string("unix://") + BERTH_TEST_DOCKERD_DIR + "/docker.sock";
}

std::string test_base_image() { return "berth-test/busybox:1"; }

std::string test_registry() {
  if (const char* r = std::getenv("BERTH_TEST_REGISTRY"); r && *r) return r;
  // The script takes the next free port when 5000 is someone else's, and says which.
  if (!overridden())
    if (auto addr = fixture_file("registry-addr"); !addr.empty()) return addr;
  return "127.0.0.1:5000";
}

std::string docker_skip_reason() {
  if (!overridden())
    if (auto why = fixture_file("skip-reason"); !why.empty()) return "test engine not started: " + why;
  docker_engine engine(test_docker_host());
  if (auto s = engine.ping(); !s)
    return "no Docker engine at " + test_docker_host() + " (scripts/dockerd.sh start did not run or failed): " +
           s.message();
  return "";
}

}  // namespace berth::it
