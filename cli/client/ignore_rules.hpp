// The rules of a `.berthignore` file (gitignore syntax) that `berth push` applies to the
// folder it packs: which paths, relative to the folder, are left out.
#pragma once
#include <string>
#include <vector>

namespace berth::cli {

class ignore_rules {
 public:
  // The rules in `text`, one pattern a line: blank lines and `#` comments skipped, `\#` and
  // `\!` escapes, `!` negation, trailing `/` for folders only, a leading or middle `/` anchors
  // the pattern to the root, `*` `?` `[...]` (fnmatch, FNM_PATHNAME), `**/`, `/**`, `/**/`.
  static ignore_rules parse(const std::string& text);
  // The rules of the file at `path`; none when it does not exist. Throws when it cannot be read.
  static ignore_rules load(const std::string& path);

  // Whether `path` ('/'-separated, relative to the root, no leading '/') is left out; the last
  // rule that matches decides. The caller does not look inside a folder that is left out.
  bool excluded(const std::string& path, bool is_dir) const;

  size_t size() const { return rules_.size(); }

 private:
  struct rule {
    std::vector<std::string> segments;  // the pattern split at '/'; "**" matches any folders
    bool negate = false;
    bool dir_only = false;
  };
  std::vector<rule> rules_;
};

}  // namespace berth::cli
