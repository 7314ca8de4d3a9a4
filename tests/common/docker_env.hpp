// The engine container tests run against: a private dockerd that scripts/dockerd.sh starts
// (under the build dir, or where BERTH_TEST_DOCKERD says), with the base image the tests build
// from and a registry on 127.0.0.1:5000. Tests that need it call docker_skip_reason() first and
// SKIP with that reason when it is not "" (CI must show them passing).
#pragma once
#include <string>

namespace berth::it {

// unix:///.../docker.sock: BERTH_TEST_DOCKER_HOST when set, else the fixture's socket.
std::string test_docker_host();
// The image tests build FROM (a busybox-static rootfs, imported; never pulled).
std::string test_base_image();
// The local registry swarm tests push to (host:port): BERTH_TEST_REGISTRY, else the one the
// fixture started (DIR/registry-addr; 127.0.0.1:5000 unless that port was taken).
std::string test_registry();
// "" when the engine answers /_ping; else why the container tests cannot run (the fixture's
// DIR/skip-reason first). Tests print "SKIPPED: <reason>" (ctest then reports them skipped).
std::string docker_skip_reason();

}  // namespace berth::it
