#include "runtime/release/tidy.hpp"

#include "runtime/files/fs_util.hpp"
#include "runtime/release/release.hpp"

namespace berth {

namespace fs = std::filesystem;

std::vector<std::string> tidy_production_dir(const fs::path& production_dir, const std::set<std::string>& known,
                                             const std::string& current_hash) {
  std::vector<std::string> done;
  std::error_code ec;
  for (auto& entry : fs::directory_iterator(production_dir, ec)) {
    auto name = entry.path().filename().string();
    bool temporary = name.find(".tmp-") != std::string::npos;
    bool unknown_release = valid_release_hash(name) && known.count(name) == 0;
    if (temporary || unknown_release) {
      fsutil::force_remove(entry.path());
      done.push_back("removed " + name);
    } else if (name == "builds") {
      for (auto& b : fs::directory_iterator(entry.path(), ec)) {
        fsutil::force_remove(b.path());
        done.push_back("removed builds/" + b.path().filename().string());
      }
    }
  }
  if (!current_hash.empty() && read_current(production_dir) != current_hash && known.count(current_hash)) {
    if (switch_current(production_dir, current_hash)) done.push_back("current -> " + current_hash);
  }
  return done;
}

}  // namespace berth
