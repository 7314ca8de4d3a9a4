// Tests only: writes gzip'd tar archives entry by entry (libarchive), including the hostile
// ones a real client could send (absolute paths, "..", links out of the tree, devices).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

namespace berth::test {

class tar_builder {
 public:
  // Starts a .tar.gz (pax format) at `path`; throws std::runtime_error on failure.
  explicit tar_builder(const std::filesystem::path& path);
  ~tar_builder();
  tar_builder& file(const std::string& name, const std::string& content, uint32_t mode = 0644);
  tar_builder& dir(const std::string& name, uint32_t mode = 0755);
  tar_builder& symlink(const std::string& name, const std::string& target);
  tar_builder& hardlink(const std::string& name, const std::string& target);
  tar_builder& device(const std::string& name, bool block = false);
  tar_builder& fifo(const std::string& name);
  // A regular file whose header says `declared` bytes but which carries `content`.
  tar_builder& lying_file(const std::string& name, uint64_t declared, const std::string& content);
  // Finishes the archive (also done by the destructor).
  void close();

 private:
  void header(const std::string& name, unsigned type, uint32_t mode, uint64_t size, const std::string& link = "",
              bool hard = false, unsigned long rdev = 0);
  void* a_ = nullptr;  // libarchive's `struct archive` (kept out of this header: tests name things `archive`)
};

// The bytes of a file (for bodies).
std::string read_file_bytes(const std::filesystem::path& p);

}  // namespace berth::test
