// `.berthignore` rules (gitignore syntax) as `berth push` applies them.
#include <catch2/catch.hpp>

#include "cli/client/ignore_rules.hpp"

using berth::cli::ignore_rules;

namespace {
bool out(const ignore_rules& r, const std::string& path, bool dir = false) { return r.excluded(path, dir); }
}  // namespace

TEST_CASE("ignore rules: blank lines and comments are no rules", "[ignore_rules]") {
  auto r = ignore_rules::parse("\n# a comment\n   \n#*.log\n");
  CHECK(r.size() == 0);
  CHECK_FALSE(out(r, "a.log"));
  CHECK_FALSE(out(r, "# a comment"));
}

TEST_CASE("ignore rules: escaped # and ! are literal names", "[ignore_rules]") {
  auto r = ignore_rules::parse("\\#notes\n\\!important\n");
  CHECK(out(r, "#notes"));
  CHECK(out(r, "!important"));
  CHECK(out(r, "sub/#notes"));
  CHECK_FALSE(out(r, "notes"));
  CHECK_FALSE(out(r, "important"));
}

TEST_CASE("ignore rules: a pattern without a slash matches at any depth", "[ignore_rules]") {
  auto r = ignore_rules::parse("*.log\nbuild\n");
  CHECK(out(r, "a.log"));
  CHECK(out(r, "deep/down/b.log"));
  CHECK(out(r, "build", true));
  CHECK(out(r, "src/build", true));
  CHECK(out(r, "src/build"));  // a file named build too
  CHECK_FALSE(out(r, "a.logx"));
  CHECK_FALSE(out(r, "builder"));
}

TEST_CASE("ignore rules: a leading or middle slash anchors to the root", "[ignore_rules]") {
  auto r = ignore_rules::parse("/todo.txt\ndoc/*.pdf\n");
  CHECK(out(r, "todo.txt"));
  CHECK_FALSE(out(r, "sub/todo.txt"));
  CHECK(out(r, "doc/a.pdf"));
  CHECK_FALSE(out(r, "x/doc/a.pdf"));
  // '*' does not cross a '/' (FNM_PATHNAME)
  CHECK_FALSE(out(r, "doc/sub/a.pdf"));
}

TEST_CASE("ignore rules: a trailing slash matches folders only", "[ignore_rules]") {
  auto r = ignore_rules::parse("cache/\n");
  CHECK(out(r, "cache", true));
  CHECK(out(r, "a/b/cache", true));
  CHECK_FALSE(out(r, "cache", false));
  CHECK_FALSE(out(r, "a/cache", false));
}

TEST_CASE("ignore rules: star question mark and brackets", "[ignore_rules]") {
  auto r = ignore_rules::parse("file?.txt\n*.[oa]\nlog[0-9]\n");
  CHECK(out(r, "file1.txt"));
  CHECK_FALSE(out(r, "file10.txt"));
  CHECK(out(r, "x.o"));
  CHECK(out(r, "lib/x.a"));
  CHECK_FALSE(out(r, "x.c"));
  CHECK(out(r, "log7"));
  CHECK_FALSE(out(r, "logx"));
  CHECK(out(r, ".hidden.o"));  // '*' matches a leading dot, as in git
}

TEST_CASE("ignore rules: leading double star matches in every folder", "[ignore_rules]") {
  auto r = ignore_rules::parse("**/temp\n**/a/b\n");
  CHECK(out(r, "temp"));
  CHECK(out(r, "x/y/temp"));
  CHECK(out(r, "a/b"));
  CHECK(out(r, "x/a/b"));
  CHECK_FALSE(out(r, "a/x/b"));
}

TEST_CASE("ignore rules: trailing double star matches everything inside but not the folder", "[ignore_rules]") {
  auto r = ignore_rules::parse("vendor/**\n");
  CHECK(out(r, "vendor/a"));
  CHECK(out(r, "vendor/a/b/c.js"));
  CHECK(out(r, "vendor/sub", true));
  CHECK_FALSE(out(r, "vendor", true));
  CHECK_FALSE(out(r, "x/vendor/a"));
}

TEST_CASE("ignore rules: middle double star matches zero or more folders", "[ignore_rules]") {
  auto r = ignore_rules::parse("a/**/b\n");
  CHECK(out(r, "a/b"));
  CHECK(out(r, "a/x/b"));
  CHECK(out(r, "a/x/y/b"));
  CHECK_FALSE(out(r, "a/x/c"));
  CHECK_FALSE(out(r, "z/a/b"));
}

TEST_CASE("ignore rules: negation re-includes and the last matching rule wins", "[ignore_rules]") {
  auto r = ignore_rules::parse("*.log\n!keep.log\n");
  CHECK(out(r, "a.log"));
  CHECK_FALSE(out(r, "keep.log"));
  CHECK_FALSE(out(r, "sub/keep.log"));
  // the order matters: a later exclusion wins over an earlier negation
  auto later = ignore_rules::parse("!keep.log\n*.log\n");
  CHECK(out(later, "keep.log"));
}

TEST_CASE("ignore rules: trailing spaces are dropped unless escaped", "[ignore_rules]") {
  auto r = ignore_rules::parse("secret.txt   \nodd\\ \n");
  CHECK(out(r, "secret.txt"));
  CHECK(out(r, "odd "));
  CHECK_FALSE(out(r, "odd"));
}

TEST_CASE("ignore rules: load of a missing file is no rules", "[ignore_rules]") {
  auto r = ignore_rules::load("/nonexistent-berth-dir/.berthignore");
  CHECK(r.size() == 0);
  CHECK_FALSE(out(r, "anything"));
}
