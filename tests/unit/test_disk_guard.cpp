// Unit tests for runtime/files/disk_guard on a real, size-limited tmpfs (needs root to mount).
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "runtime/files/disk_guard.hpp"

namespace fs = std::filesystem;
using berth::disk_guard;
using berth::status;

namespace {

struct tmpfs_dir {
  std::string path;
  bool mounted = false;
  explicit tmpfs_dir(const std::string& size) {
    char tmpl[] = "/tmp/berth-disk-guard-XXXXXX";
    path = ::mkdtemp(tmpl);
    mounted = ::mount("tmpfs", path.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~tmpfs_dir() {
    disk_guard::install(path, 0, 0);  // off again for the other tests of this process
    if (mounted) ::umount2(path.c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void fill(const std::string& file) {
  std::string chunk(64 << 10, 'x');
  FILE* f = std::fopen(file.c_str(), "wb");
  REQUIRE(f != nullptr);
  while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size() && std::fflush(f) == 0) {
  }
  std::fclose(f);
}

}  // namespace

TEST_CASE("disk guard - refuses before the disk is full, keeps the state across a restart, resumes with room",
          "[disk_guard][containment]") {
  if (::geteuid() != 0) {
    WARN("needs root to mount a tmpfs; skipped");
    return;
  }
  tmpfs_dir disk("4m");
  REQUIRE(disk.mounted);
  const uint64_t reserve = 1 << 20, low = 256 << 10;
  disk_guard::install(disk.path, reserve, low);
  CHECK(disk_guard::room("x").is_ok());
  CHECK(disk_guard::reserve_held());
  CHECK(fs::file_size(disk.path + "/.reserve") == reserve);

  // Filled by someone else: refused with no_space, and the reserve is given back.
  fill(disk.path + "/filler");
  auto refused = disk_guard::room("appending events");
  CHECK(refused.which() == status::code::no_space);
  CHECK(refused.message().find("full") != std::string::npos);
  CHECK_FALSE(disk_guard::reserve_held());
  CHECK_FALSE(fs::exists(disk.path + "/.reserve"));
  CHECK(disk_guard::full());
  CHECK(disk_guard::free_bytes() >= reserve);  // the reserve's room, held for RocksDB

  // A restart on that disk: still full, although the reserve's room is free.
  disk_guard::install(disk.path, reserve, low);
  CHECK(disk_guard::full());
  CHECK(disk_guard::room("x").which() == status::code::no_space);

  // Space comes back: the reserve is made again and writes go on.
  fs::remove(disk.path + "/filler");
  CHECK(disk_guard::room("x").is_ok());
  CHECK(disk_guard::reserve_held());
  CHECK_FALSE(disk_guard::full());
}

TEST_CASE("disk guard - off (reserve 0) never refuses", "[disk_guard][containment]") {
  disk_guard::install("/nonexistent-berth-dir", 0, 0);
  CHECK(disk_guard::room("x").is_ok());
  CHECK_FALSE(disk_guard::full());
}
