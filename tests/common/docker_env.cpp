#include "tests/common/docker_env.hpp"

#include <cstdlib>

#include "runtime/docker/engine.hpp"

namespace berth::it {

std::string test_docker_host() {
  if (const char* h = std::getenv("BERTH_TEST_DOCKER_HOST"); h && *h) return h;
  return std::string("unix://") + BERTH_TEST_DOCKERD_DIR + "/docker.sock";
}

std::string test_base_image() { return "berth-test/busybox:1"; }

std::string test_registry() { return "127.0.0.1:5000"; }

std::string docker_skip_reason() {
  docker_engine engine(test_docker_host());
  if (auto s = engine.ping(); !s)
    return "no Docker engine at " + test_docker_host() + " (scripts/dockerd.sh start did not run or failed): " +
           s.message();
  return "";
}

}  // namespace berth::it
