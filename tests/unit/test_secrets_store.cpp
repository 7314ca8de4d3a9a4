// The masking function every served log goes through (runtime/logs/mask.hpp), the `.secrets`
// file format (runtime/files/layout.hpp), and the manifest rules about secrets and git
// credentials (messages/manifest.hpp).
#include <catch2/catch.hpp>

#include "messages/manifest.hpp"
#include "messages/project_state.hpp"
#include "runtime/files/layout.hpp"
#include "runtime/logs/mask.hpp"
#include "runtime/logs/output_pipe.hpp"
#include "runtime/pipeline/deploy_log.hpp"
#include "tests/unit/support.hpp"

using namespace berth;
using namespace berth::test;
using json = nlohmann::json;
using secret_map = std::map<std::string, std::string>;

namespace {

const std::string kPem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
    "bXVsdGktbGluZSBzZWNyZXQgdmFsdWU=\n"
    "-----END PRIVATE KEY-----\n";

std::string all_of(const std::vector<std::string>& lines) {
  std::string s;
  for (auto& l : lines) s += l + "\n";
  return s;
}

}  // namespace

TEST_CASE("mask: every occurrence of every value is replaced, nothing else", "[mask]") {
  secret_mask mask(secret_map{{"API_TOKEN", "tok-12345"}, {"DB", "hunter2-db"}});
  CHECK(mask_secrets("token=tok-12345 db=hunter2-db again tok-12345.", mask) ==
        "token=******** db=******** again ********.");
  CHECK(mask_secrets("nothing secret here", mask) == "nothing secret here");
  CHECK(mask_secrets("", mask).empty());
  CHECK(mask_secrets("tok-12345", secret_mask()) == "tok-12345");  // an empty mask hides nothing
}

TEST_CASE("mask: overlapping and nested secrets are hidden whole", "[mask]") {
  // "abcd" and "cdef" overlap in "abcdef": no byte of either may show.
  secret_mask overlap(secret_map{{"A", "abcd"}, {"B", "cdef"}});
  CHECK(mask_secrets("x abcdef y", overlap) == "x ******** y");
  CHECK(mask_secrets("cdefabcd", overlap) == "********");  // adjacent: one run
  // One value inside another: the longer one decides, no tail of it is left.
  secret_mask nested(secret_map{{"SHORT", "pass"}, {"LONG", "password123"}});
  CHECK(mask_secrets("password123 and pass", nested) == "******** and ********");
  // A repeated pattern overlapping itself.
  secret_mask self(secret_map{{"R", "aaaa"}});
  CHECK(mask_secrets("aaaaaa!", self) == "********!");
}

TEST_CASE("mask: values shorter than 4 bytes are not masked", "[mask]") {
  secret_mask mask(secret_map{{"FLAG", "on"}, {"PIN", "123"}, {"KEY", "1234"}});
  CHECK(mask.values() == std::vector<std::string>{"1234"});
  CHECK(mask_secrets("on 123 1234", mask) == "on 123 ********");
}

TEST_CASE("mask: a multi-line secret is hidden whole and line by line", "[mask]") {
  secret_mask mask(secret_map{{"KEY", kPem}});
  CHECK(mask_secrets("key: " + kPem, mask) == "key: ********");
  // A log cut into lines: each line of the key is masked on its own.
  std::vector<std::string> lines{"here it comes", "-----BEGIN PRIVATE KEY-----", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
                                 "bXVsdGktbGluZSBzZWNyZXQgdmFsdWU=", "-----END PRIVATE KEY-----"};
  auto masked = mask_secrets(lines, mask);
  CHECK(masked == std::vector<std::string>{"here it comes", "********", "********", "********", "********"});
  // Windows line ends in the value do not let a line through.
  secret_mask crlf(secret_map{{"KEY", "first-line\r\nsecond-line"}});
  CHECK(mask_secrets("second-line", crlf) == "********");
}

TEST_CASE("mask: a stream written in pieces is masked once its lines are complete", "[mask]") {
  masked_lines out(secret_mask(secret_map{{"T", "s3cr3t-value"}}));
  std::vector<std::string> got;
  for (auto* piece : {"printing s3c", "r3t-", "val", "ue now\nand s3cr3t-value", "\nlast s3cr3t-val"}) {
    auto lines = out.feed(piece);
    got.insert(got.end(), lines.begin(), lines.end());
  }
  CHECK(got == std::vector<std::string>{"printing ******** now", "and ********"});
  CHECK(out.flush() == std::optional<std::string>("last s3cr3t-val"));  // an incomplete value is not a value
  masked_lines tail(secret_mask(secret_map{{"T", "s3cr3t-value"}}));
  tail.feed("no newline s3cr3t-");
  tail.feed("value");
  CHECK(tail.flush() == std::optional<std::string>("no newline ********"));
}

TEST_CASE("deploy log: lines are masked in the file, in memory and for the listener", "[mask]") {
  temp_dir t;
  std::vector<std::string> heard;
  deploy_log log(t.path / "deploy.log", [&](const std::vector<std::string>& l) { heard.insert(heard.end(), l.begin(), l.end()); });
  log.set_mask(secret_mask(secret_map{{"T", "s3cr3t-value"}, {"K", kPem}}));
  log.line("cloning with s3cr3t-value");
  log.build_output({"build says s3cr3t-value", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"});
  auto file = read_file(t.path / "deploy.log");
  CHECK(file.find("s3cr3t-value") == std::string::npos);
  CHECK(file.find("MIIEvQ") == std::string::npos);
  CHECK(file.find("build says ********\n********\n") != std::string::npos);
  CHECK(all_of(log.last_lines()).find("s3cr3t") == std::string::npos);
  CHECK(all_of(heard).find("s3cr3t") == std::string::npos);
  CHECK(heard.size() == 3);
}

TEST_CASE("secrets file: any bytes round-trip, 0600, as a JSON object", "[secrets]") {
  temp_dir t;
  auto p = paths_for(t.path.string(), "shop");
  fs::create_directories(p.root);
  std::map<std::string, std::string> secrets{{"PEM", kPem},
                                              {"QUOTES", "it's \"quoted\" = 'x'\\n"},
                                              {"UNICODE", "p\xc3\xa4ss \xe2\x9c\x93\ttab"},
                                              {"TRAILING", "line\n\n"},
                                              {"EQUALS", "a=b\nC='d'\nE=f"}};
  REQUIRE(write_secrets_file(p, secrets));
  CHECK(mode_of(p.secrets_file) == 0600);
  CHECK(read_secrets_file(p) == secrets);
  CHECK(json::parse(read_file(p.secrets_file)).is_object());
  // Rewritten smaller: the old values are gone.
  REQUIRE(write_secrets_file(p, {{"ONE", "1"}}));
  CHECK(read_secrets_file(p) == std::map<std::string, std::string>{{"ONE", "1"}});
  CHECK(read_file(p.secrets_file).find("PRIVATE") == std::string::npos);
}

TEST_CASE("secrets file: the older NAME='value' format is still read, multi-line values whole", "[secrets]") {
  temp_dir t;
  auto p = paths_for(t.path.string(), "shop");
  // Exactly what berth before the JSON format wrote (values single-quoted, ' as '\'').
  write_file(p.secrets_file,
             "API_TOKEN='tok-123'\n"
             "PEM='-----BEGIN KEY-----\nAAAA\n-----END KEY-----\n'\n"
             "QUOTE='it'\\''s'\n"
             "EMPTY=''\n",
             0600);
  auto got = read_secrets_file(p);
  CHECK(got == std::map<std::string, std::string>{{"API_TOKEN", "tok-123"},
                                                  {"PEM", "-----BEGIN KEY-----\nAAAA\n-----END KEY-----\n"},
                                                  {"QUOTE", "it's"},
                                                  {"EMPTY", ""}});
  CHECK(read_secrets_file(paths_for(t.path.string(), "none")).empty());
}

TEST_CASE("manifest: build.secrets names secrets of the project, strictly", "[secrets][manifest]") {
  json m{{"name", "shop"},
         {"source", {{"path", "/srv/shop"}}},
         {"build", {{"command", {"make"}}, {"secrets", {"NPM_TOKEN"}}}},
         {"secrets", {{"NPM_TOKEN", "t0k3n-npm"}, {"DB_PASSWORD", "db-pw-123"}}}};
  auto r = parse_manifest(m);
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(r.value.build_secrets == std::vector<std::string>{"NPM_TOKEN"});
  auto out = to_json(r.value);
  CHECK(out["build"]["secrets"] == json{"NPM_TOKEN"});
  CHECK(parse_manifest(out).value.build_secrets == r.value.build_secrets);  // the GET answer PUT back

  auto unknown = m;
  unknown["build"]["secrets"] = {"NPM_TOKEN", "NOPE"};
  auto u = parse_manifest(unknown);
  CHECK_FALSE(u.ok);
  CHECK(u.error == "build.secrets: 'NOPE' is not one of the project's secrets");
  for (auto bad : {json("NPM_TOKEN"), json{1}, json{""}}) {
    auto b = m;
    b["build"]["secrets"] = bad;
    auto res = parse_manifest(b);
    INFO(bad.dump());
    CHECK_FALSE(res.ok);
    CHECK_THAT(res.error, Catch::StartsWith("build.secrets"));
  }
}

TEST_CASE("manifest: a git URL with credentials is refused, pointing at credentials_secret", "[secrets][manifest]") {
  auto with_git = [](const std::string& url) {
    return json{{"name", "shop"}, {"source", {{"git", url}}}, {"secrets", {{"GIT_TOKEN", "ghp_abc123"}}}};
  };
  for (auto url : {"https://user:ghp_abc123@github.com/o/r.git", "https://ghp_abc123@github.com/o/r.git",
                   "http://u:p@10.0.0.1:8080/r", "ssh://git:pw@host/r.git", "HTTPS://tok@host/r", "user:pw@host:r.git"}) {
    auto r = parse_manifest(with_git(url));
    INFO(url);
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.error, Catch::StartsWith("source.git: must not contain credentials"));
    CHECK_THAT(r.error, Catch::Contains("source.credentials_secret"));
    CHECK(r.error.find("ghp_abc123") == std::string::npos);
    CHECK(r.error.find(":pw") == std::string::npos);
  }
  for (auto url : {"https://github.com/o/r.git", "git@github.com:o/r.git", "ssh://git@host/r.git", "/srv/repo",
                   "file:///srv/repo", "https://host/path@with-at"}) {
    auto r = parse_manifest(with_git(url));
    INFO(url << ": " << r.error);
    CHECK(r.ok);
  }
  // The way to give one.
  auto good = with_git("https://github.com/o/r.git");
  good["source"]["credentials_secret"] = "GIT_TOKEN";
  auto r = parse_manifest(good);
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(r.value.source_credentials_secret == "GIT_TOKEN");
  CHECK(to_json(r.value)["source"]["credentials_secret"] == "GIT_TOKEN");
  auto missing = good;
  missing["source"]["credentials_secret"] = "NOPE";
  CHECK(parse_manifest(missing).error == "source.credentials_secret: 'NOPE' is not one of the project's secrets");
  auto ssh = with_git("git@github.com:o/r.git");
  ssh["source"]["credentials_secret"] = "GIT_TOKEN";
  CHECK(parse_manifest(ssh).error == "source.credentials_secret: applies only to http(s) git URLs");
  json path{{"name", "shop"}, {"source", {{"path", "/srv"}, {"credentials_secret", "X"}}}};
  CHECK(parse_manifest(path).error == "source.credentials_secret: applies only to git sources");
}

TEST_CASE("manifest: a project an older berth recorded with a credential URL still loads, masked in answers",
          "[secrets][manifest]") {
  json manifest{{"name", "shop"}, {"source", {{"git", "https://user:ghp_abc123@github.com/o/r.git"}, {"ref", "main"}}},
                {"build", {{"command", {"make"}}}}};
  event_record e;
  e.seq = 1;
  e.type = "project_created";
  e.data = json{{"manifest", manifest}, {"ports", {{"production", 8100}, {"preview", 4100}}}}.dump();
  project_record p;
  fold(p, e);
  CHECK(p.spec.source_git == "https://user:ghp_abc123@github.com/o/r.git");  // the clone still works
  CHECK(p.spec.build_command == std::vector<std::string>{"make"});           // nothing after it was lost
  CHECK(to_json(p.spec)["source"]["git"] == "https://***@github.com/o/r.git");
}

TEST_CASE("output pipe: what a child writes arrives as it is written, and no file is left", "[mask]") {
  temp_dir t;
  std::unique_ptr<output_pipe> pipe;
  auto path = t.path / "build.output";
  REQUIRE(output_pipe::create(path, &pipe));
  CHECK(mode_of(path) == 0600);
  CHECK(pipe->read_for(std::chrono::milliseconds(10)).empty());  // nobody wrote: nothing, no wait for a writer
  // Two writers one after the other (a build and a process it starts), each opening the path.
  for (auto* piece : {"first piece ", "second piece\n"}) {
    std::ofstream(path, std::ios::app) << piece;
  }
  std::string got;
  for (int i = 0; i < 20 && got.size() < 25; ++i) got += pipe->read_for(std::chrono::milliseconds(50));
  CHECK(got == "first piece second piece\n");
  CHECK(pipe->drain().empty());
  pipe.reset();
  CHECK_FALSE(fs::exists(fs::symlink_status(path)));
}
