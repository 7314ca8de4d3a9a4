#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <CLI/CLI.hpp>

#include "config/config.hpp"
#include "runtime/auth/token.hpp"

using namespace berth;

namespace {

struct env_guard {
  std::string key;
  env_guard(const char* k, const char* v) : key(k) { setenv(k, v, 1); }
  ~env_guard() { unsetenv(key.c_str()); }
};

config load(std::vector<std::string> args) {
  config cfg;
  config_loader loader{cfg};
  CLI::App app;
  loader.add_options(app);
  std::reverse(args.begin(), args.end());
  app.parse(args);
  loader.resolve();
  return cfg;
}

std::string write_file(const std::string& content) {
  char path[] = "/tmp/berth-config-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  std::ofstream(path) << content;
  return path;
}

}  // namespace

TEST_CASE("config: defaults, then file, then BERTH_* env, then flags", "[config]") {
  auto defaults = load({});
  CHECK(defaults.listen_host == "127.0.0.1");
  CHECK(defaults.listen_port == 7070);
  CHECK(defaults.production_ports.lo == 8000);
  CHECK(defaults.preview_ports.hi == 7999);

  auto file = write_file(R"({"listen": "127.0.0.1:7101", "log_level": "debug", "http_threads": 4})");
  auto from_file = load({"--config", file});
  CHECK(from_file.listen_port == 7101);
  CHECK(from_file.log_level == "debug");
  CHECK(from_file.http_threads == 4);

  {
    env_guard env{"BERTH_LISTEN", "127.0.0.1:7102"};
    auto from_env = load({"--config", file});
    CHECK(from_env.listen_port == 7102);
    CHECK(from_env.log_level == "debug");  // the file still applies where env is silent
    auto from_flag = load({"--config", file, "--listen", "127.0.0.1:7103"});
    CHECK(from_flag.listen_port == 7103);
  }
  std::remove(file.c_str());
}

TEST_CASE("config: bad values are refused", "[config]") {
  CHECK_THROWS(load({"--listen", "nope"}));
  CHECK_THROWS(load({"--log-format", "xml"}));
  CHECK_THROWS(load({"--http-threads", "0"}));
  CHECK_THROWS(load({"--preview-ports", "8000-9000"}));  // overlaps production
  auto unknown = write_file(R"({"lisen": "127.0.0.1:1"})");
  CHECK_THROWS_WITH(load({"--config", unknown}), Catch::Contains("lisen"));
  std::remove(unknown.c_str());
  CHECK_THROWS(load({"--config", "/nonexistent/berth.json"}));
}

TEST_CASE("config: the API token comes from --token BERTH_TOKEN or the file and is checked", "[config]") {
  CHECK(load({}).token.empty());  // none given: berth uses <data>/token
  CHECK(load({"--token", "flag-token-0123456789"}).token == "flag-token-0123456789");
  auto file = write_file(R"({"token": "file-token-0123456789"})");
  CHECK(load({"--config", file}).token == "file-token-0123456789");
  {
    env_guard env{"BERTH_TOKEN", "env-token-0123456789"};
    CHECK(load({"--config", file}).token == "env-token-0123456789");
    CHECK(load({"--config", file, "--token", "flag-token-0123456789"}).token == "flag-token-0123456789");
  }
  std::remove(file.c_str());
  CHECK_THROWS(load({"--token", "short"}));                        // under 16 characters
  CHECK_THROWS(load({"--token", std::string(257, 'a')}));          // over 256
  CHECK_THROWS(load({"--token", "has space 0123456789"}));
  CHECK_THROWS(load({"--token", "has-newline\n0123456789"}));
  CHECK_THROWS(load({"--token", "t\xC3\xB6ken-0123456789abc"}));   // not ASCII
}

TEST_CASE("config: loopback hosts are the ones that may get a generated token", "[config]") {
  for (auto h : {"127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"}) {
    INFO(h);
    CHECK(is_loopback_host(h));
  }
  for (auto h : {"0.0.0.0", "::", "[::]", "192.168.1.10", "10.0.0.1", "example.com", ""}) {
    INFO(h);
    CHECK_FALSE(is_loopback_host(h));
  }
}

TEST_CASE("token file: created 0600 once, reused, refused when loose or odd", "[config]") {
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/berth-token-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  const auto path = dir + "/data/token";
  auto mode = [](const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0u;
  };

  std::string token, error;
  CHECK(load_token_file(path, token, error) == token_file_status::missing);
  auto old_umask = ::umask(0);  // even with a permissive umask the file is 0600
  CHECK(load_or_create_token_file(path, token, error) == token_file_status::created);
  ::umask(old_umask);
  CHECK(mode(path) == 0600);
  CHECK(valid_token(token));
  CHECK(token.size() == 43);  // 32 random bytes, base64url
  std::string again;
  CHECK(load_or_create_token_file(path, again, error) == token_file_status::loaded);
  CHECK(again == token);
  CHECK(generate_token() != generate_token());
  // No temporary file is left next to it.
  size_t entries = 0;
  for (auto& e : fs::directory_iterator(dir + "/data")) entries += e.path().filename() == "token" ? 0 : 1;
  CHECK(entries == 0);

  // Readable by others: refused (and left alone), with how to fix it; never the token itself.
  ::chmod(path.c_str(), 0640);
  std::string loose;
  CHECK(load_or_create_token_file(path, loose, error) == token_file_status::refused);
  CHECK(error.find("0640") != std::string::npos);
  CHECK(error.find("chmod 600") != std::string::npos);
  CHECK(error.find(token) == std::string::npos);
  CHECK(mode(path) == 0640);
  ::chmod(path.c_str(), 0400);  // narrower than 0600 is fine
  CHECK(load_token_file(path, loose, error) == token_file_status::loaded);

  // A symlink, an empty file, or junk: refused.
  fs::remove(path);
  fs::create_symlink(dir + "/elsewhere", path);
  CHECK(load_or_create_token_file(path, loose, error) == token_file_status::refused);
  fs::remove(path);
  {
    std::ofstream(path) << "";
  }
  ::chmod(path.c_str(), 0600);
  CHECK(load_token_file(path, loose, error) == token_file_status::refused);
  {
    std::ofstream(path) << "two words 0123456789abcdef\n";
  }
  CHECK(load_token_file(path, loose, error) == token_file_status::refused);
  fs::remove_all(dir);
}

TEST_CASE("config: --proxy-admin-port is refused (Caddy's admin API is a unix socket), audit options", "[config]") {
  try {
    load({"--proxy-admin-port", "2019"});
    FAIL("--proxy-admin-port was accepted");
  } catch (const CLI::ValidationError& e) {
    CHECK(std::string(e.what()).find("unix socket") != std::string::npos);
  }
  {
    env_guard g("BERTH_PROXY_ADMIN_PORT", "2019");
    CHECK_THROWS_AS(load({}), CLI::ValidationError);
  }
  auto d = load({});
  CHECK(d.audit_key.empty());  // the default path is chosen at start (root or not)
  CHECK(d.audit_checkpoint_every == 1000);
  auto c = load({"--audit-key", "/srv/keys/audit.key", "--audit-checkpoint-every", "50"});
  CHECK(c.audit_key == "/srv/keys/audit.key");
  CHECK(c.audit_checkpoint_every == 50);
  CHECK_THROWS_AS(load({"--audit-checkpoint-every", "0"}), CLI::ValidationError);
}

TEST_CASE("config: the upload limits come from flags, BERTH_* variables and config keys, validated", "[config]") {
  auto defaults = load({});
  CHECK(defaults.max_upload_bytes == 536870912u);
  CHECK(defaults.max_upload_files == 100000u);
  CHECK(defaults.max_upload_unpacked_bytes == 2147483648u);

  auto file = write_file(R"({"max_upload_files": 50, "max_upload_unpacked_bytes": "8589934592"})");
  env_guard env("BERTH_MAX_UPLOAD_BYTES", "1048576");
  auto cfg = load({"--config", file, "--max-upload-files", "70"});
  CHECK(cfg.max_upload_bytes == 1048576u);
  CHECK(cfg.max_upload_files == 70u);  // the flag wins over the file
  CHECK(cfg.max_upload_unpacked_bytes == 8589934592u);  // past 32 bits

  CHECK_THROWS_AS(load({"--max-upload-bytes", "10"}), CLI::ValidationError);
  CHECK_THROWS_AS(load({"--max-upload-files", "0"}), CLI::ValidationError);
  CHECK_THROWS_AS(load({"--max-upload-unpacked-bytes", "lots"}), CLI::ValidationError);
}
