// The HTTP layer under load and off loopback, through a real `berth serve`: every connection
// gets an answer (the result, or 503 `saturated` with Retry-After, never a reset or silence),
// time queued for a worker does not cost a request its head deadline, long calls do not hold
// workers, and a non-loopback address needs TLS (served with a certificate made here by
// openssl, checked with curl) or an explicit --insecure-http (test_auth.cpp starts one so).
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

namespace {

// A copy of the hello app; `delay_s` > 0 makes it sleep that long before it listens (a slow
// health check).
std::string hello_app(const temp_dir& tmp, const std::string& dir, int delay_s = 0) {
  auto path = tmp / dir;
  fs::create_directories(path);
  fs::copy_file(std::string(BERTH_TEST_APPS) + "/hello/server.py", path + "/server.py");
  write_file(path + "/message.txt", dir + "\n");
  if (delay_s > 0)
    write_file(path + "/slow.py", "import runpy, time\ntime.sleep(" + std::to_string(delay_s) +
                                      ")\nrunpy.run_path('server.py', run_name='__main__')\n");
  return path;
}

json preview_manifest(const std::string& name, const std::string& src, bool slow = false) {
  return {{"name", name},
          {"source", {{"path", src}}},
          {"preview",
           {{"command", {"python3", slow ? "slow.py" : "server.py"}},
            {"health", {{"path", "/"}, {"interval_ms", 50}, {"timeout_s", 60}}}}}};
}

bool is_saturated(const raw_response& r) {
  return r.status == 503 && r.error_code() == "saturated" && !r.header("Retry-After").empty();
}

// A program's exit code and stdout (no shell: arguments are the test's own).
struct command_result {
  int exit_code = -1;
  std::string out;
};
command_result run_command(const std::vector<std::string>& argv) {
  std::string line;
  for (auto& a : argv) line += "'" + a + "' ";
  line += "2>/dev/null";
  command_result r;
  FILE* p = ::popen(line.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// curl over HTTPS, trusting only `ca`; the body then the status code on the last line.
command_result curl_https(const std::string& ca, uint16_t port, const std::string& path, const std::string& token) {
  return run_command({"curl", "-sS", "--max-time", "5", "--cacert", ca, "-H", "Authorization: Bearer " + token,
                      "-w", "\n%{http_code}", "https://127.0.0.1:" + std::to_string(port) + path});
}

int last_line_status(const std::string& out) {
  auto nl = out.rfind('\n');
  try {
    return std::stoi(out.substr(nl == std::string::npos ? 0 : nl + 1));
  } catch (...) {
    return -1;
  }
}

}  // namespace

TEST_CASE("http layer - 200 concurrent clients with mixed calls all get an answer", "[integration][http]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options());
  auto& api = srv.api();
  // One project with a preview and a production (the site), one app for the creations.
  auto site = make_site(tmp, "site-src", "1");
  REQUIRE(api.post("/api/projects", site_manifest("mixed", site)).status == 201);
  auto hello = hello_app(tmp, "hello");

  constexpr int clients = 200;
  struct outcome {
    std::string call;
    http_result r;
  };
  std::vector<outcome> outcomes(clients);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      client c(srv.port(), 120s);
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      auto& o = outcomes[i];
      switch (i % 6) {
        case 0: o.call = "GET /health"; o.r = c.get("/health"); break;
        case 1: o.call = "GET /api/projects/mixed"; o.r = c.get("/api/projects/mixed"); break;
        case 2: {
          auto name = "made-" + std::to_string(i);
          o.call = "POST /api/projects " + name;
          o.r = c.post("/api/projects", manifest_for(name, hello));
          break;
        }
        case 3: o.call = "POST preview/start"; o.r = c.post("/api/projects/mixed/preview/start", std::string{}); break;
        case 4: o.call = "POST deployments"; o.r = c.post("/api/projects/mixed/deployments", std::string{}); break;
        default: o.call = "GET /api/projects"; o.r = c.get("/api/projects"); break;
      }
    });
  while (ready.load() < clients) std::this_thread::sleep_for(1ms);
  go.store(true);
  for (auto& t : threads) t.join();

  int answered = 0, saturated = 0;
  for (auto& o : outcomes) {
    INFO(o.call << ": " << o.r.describe());
    CHECK(o.r.status != -1);  // never a reset, a timeout or silence
    if (o.r.status == 503) {
      CHECK(o.r.error_code() == "saturated");
      CHECK(!o.r.header("Retry-After").empty());
      ++saturated;
      continue;
    }
    CHECK(o.r.status >= 200);
    CHECK(o.r.status < 300);
    ++answered;
  }
  INFO("answered " << answered << ", saturated " << saturated);
  CHECK(answered + saturated == clients);
  CHECK(srv.running());
}

TEST_CASE("http layer - a saturated server answers 503 with Retry-After at once, then recovers",
          "[integration][http]") {
  temp_dir tmp;
  server_options o;
  o.extra_args = {"--http-threads", "2", "--http-queue", "2"};
  server srv(tmp.path(), o);
  // Connections that send half a request hold a worker each (for the 5 s head deadline) or
  // wait in the queue; open them until berth refuses one: 2 workers + 2 queued.
  std::vector<std::unique_ptr<raw_connection>> stalled;
  raw_response refused;
  for (int i = 0; i < 8 && refused.status == -1; ++i) {
    if (i == 2) std::this_thread::sleep_for(300ms);  // the workers have taken the first two
    auto c = std::make_unique<raw_connection>(srv.port());
    REQUIRE(c->send("GET /hea"));
    c->read_for(100ms);
    if (!c->received().empty()) {
      refused = c->read_response(2s);
      break;
    }
    stalled.push_back(std::move(c));
  }
  INFO(refused.describe());
  CHECK(stalled.size() == 4);
  CHECK(is_saturated(refused));
  CHECK(refused.is_json_error());

  // A whole request gets the same answer while the server is full, without waiting for a worker:
  // the stalled connections hold them and have not been answered yet.
  auto r = raw_request(srv.port(), "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 3s);
  INFO(r.describe());
  CHECK(is_saturated(r));
  CHECK(r.header("Connection") == "close");
  for (auto& s : stalled) CHECK(s->received().empty());

  // The stalled ones end with a 408; then berth answers again.
  for (auto& s : stalled) CHECK(s->wait_closed(15s));
  CHECK(parse_response(stalled.front()->received()).status == 408);
  auto ok = client(srv.port(), auth::none(), 10s).get("/health");
  INFO(ok.describe());
  CHECK(ok.status == 200);
}

TEST_CASE("http layer - time queued for a worker does not count against the head deadline",
          "[integration][http]") {
  temp_dir tmp;
  server_options o;
  o.extra_args = {"--http-threads", "2"};
  server srv(tmp.path(), o);
  // Both workers are held by connections that never finish their head (408 after 5 s).
  std::vector<std::unique_ptr<raw_connection>> stalled;
  for (int i = 0; i < 2; ++i) {
    stalled.push_back(std::make_unique<raw_connection>(srv.port()));
    REQUIRE(stalled.back()->send("GET /hea"));
  }
  std::this_thread::sleep_for(200ms);
  // This one waits ~5 s in the queue, then sends the rest of its head 2 s after a worker took
  // it: well within 5 s of being taken, long after 5 s of being accepted.
  raw_connection queued(srv.port());
  REQUIRE(queued.send("GET /health HTTP/1.1\r\n"));
  for (auto& s : stalled) REQUIRE(s->wait_closed(15s));  // the workers are free from here on
  std::this_thread::sleep_for(2s);
  REQUIRE(queued.send("Host: x\r\n\r\n"));
  auto r = queued.read_response(10s);
  INFO(r.describe());
  CHECK(r.status == 200);
  CHECK(r.body.value("status", "") == "ok");
}

TEST_CASE("http layer - preview starts waiting for slow health checks do not hold the workers",
          "[integration][http]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options({"--http-threads", "2"}));
  auto& api = srv.api();
  // Three previews whose apps take 8 s to listen: more waiting calls than workers.
  constexpr int slow = 3;
  for (int i = 0; i < slow; ++i) {
    auto name = "slow-" + std::to_string(i);
    REQUIRE(api.post("/api/projects", preview_manifest(name, hello_app(tmp, name, 8), true)).status == 201);
  }
  std::atomic<int> previews_done{0};
  std::vector<http_result> started(slow);
  std::vector<std::thread> threads;
  for (int i = 0; i < slow; ++i)
    threads.emplace_back([&, i] {
      started[i] = client(srv.port(), 60s).post("/api/projects/slow-" + std::to_string(i) + "/preview/start",
                                                std::string{});
      previews_done.fetch_add(1);
    });
  std::this_thread::sleep_for(500ms);  // the starts are waiting for their health checks

  // Meanwhile other requests are answered, before any of the starts.
  // /health shows the three starts waiting without a worker slot.
  client other(srv.port(), 30s);
  int most_waiting = 0;
  for (int k = 0; k < 5; ++k) {
    auto list = other.get("/api/projects");
    INFO(list.describe());
    CHECK(list.status == 200);
    auto health = client(srv.port(), auth::none(), 30s).get("/health");
    INFO(health.describe());
    CHECK(health.status == 200);  // no REQUIRE (nor throwing) while the threads run
    auto load = health.body.is_object() ? health.body.value("http", json::object()) : json::object();
    most_waiting = std::max(most_waiting, load.value("long_calls", 0));
    CHECK(load.value("workers", 0) == 2);
  }
  CHECK(previews_done.load() == 0);
  CHECK(most_waiting == slow);
  for (auto& t : threads) t.join();
  for (auto& s : started) {
    INFO(s.describe());
    CHECK(s.status == 200);
    CHECK(s.body.value("status", "") == "running");
  }
}

TEST_CASE("http layer - idle kept-alive connections do not hold the workers", "[integration][http]") {
  temp_dir tmp;
  server_options o;
  o.extra_args = {"--http-threads", "2"};
  server srv(tmp.path(), o);
  // Four clients keep their connection open after an answer (berth closes them after 2 s idle).
  std::vector<std::unique_ptr<raw_connection>> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(std::make_unique<raw_connection>(srv.port()));
    REQUIRE(idle.back()->send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
    REQUIRE(idle.back()->read_response(10s).status == 200);
  }
  // A new client is answered at once, while those are still open.
  auto r = raw_request(srv.port(), "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 10s);
  INFO(r.describe());
  CHECK(r.status == 200);
  for (auto& c : idle) CHECK(c->read_for(5ms));  // not closed yet
  // And a kept-alive connection still serves its next request.
  auto& first = *idle.front();
  auto before = first.received().size();
  REQUIRE(first.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto again = parse_response("");
  for (int i = 0; i < 200 && !again.complete && first.read_for(50ms); ++i)
    again = parse_response(first.received().substr(before));
  INFO(first.received());
  CHECK(again.status == 200);
}

TEST_CASE("http layer - an open deployment event stream does not keep berth from stopping",
          "[integration][http]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options({"--shutdown-grace-ms", "500"}));
  auto site = make_site(tmp, "site-src", "1");
  set_site(site, "BUILD_SLEEP", "30");
  REQUIRE(srv.api().post("/api/projects", site_manifest("streamed", site)).status == 201);
  auto queued = srv.api().post("/api/projects/streamed/deployments", std::string{});
  REQUIRE(queued.status == 202);
  std::string id = queued.body.at("id");
  sse_result stream;
  std::thread reader([&] { stream = read_sse(srv.port(), "/api/deployments/" + id + "/events", 60s); });
  std::this_thread::sleep_for(1s);  // the stream is open, the build is sleeping
  // SIGTERM: the stream ends (the client reconnects to the next berth), berth exits 0 without
  // waiting for the build to finish.
  CHECK(srv.terminate(20s) == 0);
  reader.join();
  INFO(stream.describe());
  CHECK(stream.status == 200);
  CHECK(stream.ended);
}

TEST_CASE("http layer - a non-loopback address needs TLS or --insecure-http, HTTPS serves the API",
          "[integration][http][tls]") {
  temp_dir tmp;
  const std::string token = "tls-test-token-0123456789abcdef";
  auto port = free_port();
  {
    // No TLS, no --insecure-http: refused before anything is created or listens.
    auto r = run({"serve", "--listen", "0.0.0.0:" + std::to_string(port), "--data", tmp / "data", "--token", token,
                  "--switch-mode", "direct"},
                 {}, 20s);
    INFO(r.describe());
    CHECK(r.exit_code == 1);
    CHECK((r.out + r.err).find("--tls-cert") != std::string::npos);
    CHECK((r.out + r.err).find("--insecure-http") != std::string::npos);
    CHECK_FALSE(fs::exists(tmp / "data"));
  }
  {
    // A certificate that cannot be loaded: refused with the file named.
    auto r = run({"serve", "--listen", "127.0.0.1:" + std::to_string(port), "--data", tmp / "data", "--token", token,
                  "--tls-cert", tmp / "missing.pem", "--tls-key", tmp / "missing.key", "--switch-mode", "direct"},
                 {}, 20s);
    INFO(r.describe());
    CHECK(r.exit_code == 1);
    CHECK((r.out + r.err).find("missing.pem") != std::string::npos);
    CHECK_FALSE(fs::exists(tmp / "data"));
  }

  // A self-signed certificate for 127.0.0.1, made here.
  auto cert = tmp / "cert.pem", key = tmp / "key.pem";
  auto made = run_command({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                           "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                           "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"});
  REQUIRE(made.exit_code == 0);

  process berth;
  berth.start({berth_binary, "serve", "--listen", "127.0.0.1:" + std::to_string(port), "--data", tmp / "data",
               "--token", token, "--tls-cert", cert, "--tls-key", key, "--switch-mode", "direct"},
              {}, tmp / "server.log");
  command_result health;
  for (auto until = steady::now() + 20s; steady::now() < until && berth.running();) {
    health = curl_https(cert, port, "/health", token);
    if (last_line_status(health.out) == 200) break;
    std::this_thread::sleep_for(100ms);
  }
  INFO(health.out << "\n--- log ---\n" << read_file(tmp / "server.log"));
  REQUIRE(last_line_status(health.out) == 200);
  CHECK(health.out.find("\"scheme\":\"https\"") != std::string::npos);
  CHECK(read_file(tmp / "server.log").find("HTTPS") != std::string::npos);

  auto created = curl_https(cert, port, "/api/projects", token);
  CHECK(last_line_status(created.out) == 200);
  // Without trusting the certificate, curl refuses it; plain HTTP gets no answer.
  auto untrusted = run_command({"curl", "-sS", "--max-time", "5", "https://127.0.0.1:" + std::to_string(port) + "/health"});
  CHECK(untrusted.exit_code != 0);
  auto plain = raw_request(port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 6s);
  CHECK(plain.status == -1);
  CHECK(berth.running());
  berth.signal(SIGTERM);
  CHECK(berth.wait(15s) == 0);
}

TEST_CASE("http layer - loopback stays plain HTTP by default and /health says so", "[integration][http][tls]") {
  temp_dir tmp;
  server srv(tmp.path());
  CHECK(srv.health().value("scheme", "") == "http");
  CHECK(srv.log().find("plain HTTP on loopback") != std::string::npos);
}
