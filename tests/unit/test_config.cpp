#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include "config/config.hpp"

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
