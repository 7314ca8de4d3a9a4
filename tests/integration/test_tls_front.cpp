// HTTPS for sites (issue 16, item 2): a real Caddy running the static TLS front config
// (runtime/proxy/tls_front.hpp) in front of a tiny upstream standing in for HAProxy's host
// listener, with a tiny ask server standing in for HAProxy's ask frontend, and real pebble
// (Let's Encrypt's ACME test server) as the CA. Clients are OpenSSL connections to 127.0.0.1
// with SNI = the site's name, verifying its certificate against the CA's root.
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/tls_support.hpp"

using namespace berth;
using namespace berth::it;
using namespace std::chrono_literals;

namespace {

constexpr const char* kSite = "shop.berth.test";
constexpr const char* kOther = "stranger.berth.test";

// Everything a test needs; each piece stops what it started when the test ends (also on failure).
struct front_fixture {
  temp_dir tmp;
  front_upstream upstream;
  ask_server ask{{kSite}};
  tls_front_process caddy;
  tls_front_settings settings;
  std::unique_ptr<pebble_ca> pebble;
  std::string root;  // the CA root clients trust
  std::string skip;  // why the test cannot run here ("" = it can)

  // validity_s: how long pebble's certificates last (acme mode; 0 = its default).
  explicit front_fixture(const std::string& mode, unsigned validity_s = 0) : caddy(caddy_binary(), tmp / "caddy") {
    if (caddy_binary().empty()) {
      skip = "caddy is not installed";
      return;
    }
    settings = caddy.settings(mode, upstream.port(), ask.port());
    if (mode == "acme") {
      pebble = std::make_unique<pebble_ca>(tmp / "pebble", settings.http_port, settings.https_port, validity_s);
      if (!pebble->ok()) {
        skip = pebble->skip_reason;
        return;
      }
      settings.acme_directory = pebble->directory;
      settings.acme_email = "ops@berth.test";
      settings.acme_ca_root = pebble->ca_file;
      root = pebble->root_file;
    } else {
      root = tls_front_internal_root(settings.storage_dir);
    }
  }

  // Starts Caddy; in internal mode waits for its CA root to be written.
  void start() {
    std::string error;
    bool started = caddy.start(settings, &error);
    INFO(error);
    REQUIRE(started);
    INFO(caddy.log());
    REQUIRE(eventually([&] { return std::filesystem::exists(root); }, 10s));
  }
};

// Whether Caddy stored anything (certificate, key, metadata) named after `name`.
bool stored_for(const std::string& storage_dir, const std::string& name) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(storage_dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->path().filename() == name) return true;
  return false;
}

#define SKIP_UNLESS_READY(f)               \
  if (!(f).skip.empty()) {                 \
    WARN("skipped: " << (f).skip);         \
    return;                                \
  }

}  // namespace

TEST_CASE("tls front: a name gets an ACME certificate from pebble on its first HTTPS request, verified against pebble's root",
          "[integration][tls]") {
  front_fixture f("acme");
  SKIP_UNLESS_READY(f);
  f.start();
  INFO(f.caddy.log());

  tls_connection c;
  bool c_open = c.open(f.settings.https_port, kSite, f.root);
  INFO(c.error());
  REQUIRE(c_open);
  CHECK(c.peer_names() == std::vector<std::string>{kSite});
  CHECK(c.peer_issuer().find("Pebble") != std::string::npos);
  CHECK(c.alpn() == "http/1.1");
  REQUIRE(c.write(std::string("GET /hello?x=1 HTTP/1.1\r\nHost: ") + kSite + "\r\nConnection: close\r\n\r\n"));
  c.read_for(10s);
  // The upstream saw the site's Host unchanged and that the client spoke HTTPS.
  CHECK(c.received().rfind("HTTP/1.1 200", 0) == 0);
  CHECK(c.received().find(std::string("upstream host=") + kSite + " proto=https path=/hello?x=1\n") != std::string::npos);
  CHECK(f.ask.asked().count(kSite) == 1);

  // The certificate is kept: a second connection is served the same one, with no new ask.
  auto serial = c.peer_serial();
  int asks = f.ask.times_asked(kSite);
  tls_connection second;
  bool second_open = second.open(f.settings.https_port, kSite, f.root);
  INFO(second.error());
  REQUIRE(second_open);
  CHECK(second.peer_serial() == serial);
  CHECK(f.ask.times_asked(kSite) == asks);
  std::string error;
  auto again = tls_get(f.settings.https_port, kSite, f.root, "/again", &error);
  INFO(error);
  CHECK(again.find("path=/again") != std::string::npos);

  // The certificate lives in storage_dir: a restarted Caddy serves the same one (no new order,
  // which a public CA would count against its rate limits), and Caddy 2.6.2 loads it without
  // asking again (as tls_front.hpp says).
  f.caddy.kill();
  std::string error2;
  bool restarted = f.caddy.start(f.settings, &error2);
  INFO(error2);
  REQUIRE(restarted);
  tls_connection after;
  bool reopened = after.open(f.settings.https_port, kSite, f.root);
  INFO(after.error());
  REQUIRE(reopened);
  CHECK(after.peer_serial() == serial);
  CHECK(f.ask.times_asked(kSite) == asks);

  // It is pebble's root that makes it valid: against another anchor (pebble's own HTTPS
  // certificate) the same handshake fails.
  tls_connection wrong;
  CHECK_FALSE(wrong.open(f.settings.https_port, kSite, f.pebble->ca_file));
}

TEST_CASE("tls front: ACME http-01 challenges are answered on the HTTP port that redirects everything else",
          "[integration][tls]") {
  front_fixture f("acme");
  SKIP_UNLESS_READY(f);
  // Only http-01 left (no dns-01 is configured): the certificate can only come through the
  // "http" server, whose one route answers 308.
  std::string error;
  bool started = f.caddy.start(f.settings, &error, [](nlohmann::json& c) {
    c["apps"]["tls"]["automation"]["policies"][0]["issuers"][0]["challenges"] = {{"tls-alpn", {{"disabled", true}}}};
  });
  INFO(error);
  REQUIRE(started);
  INFO(f.caddy.log());
  tls_connection c;
  bool opened = c.open(f.settings.https_port, kSite, f.root);
  INFO(c.error());
  REQUIRE(opened);
  CHECK(c.peer_issuer().find("Pebble") != std::string::npos);
  // pebble validated by fetching /.well-known/acme-challenge/<token> on the HTTP port.
  CHECK(read_file(f.tmp / "pebble/pebble.log").find("Attempting to validate w/ HTTP: http://") != std::string::npos);
}

TEST_CASE("tls front: a name the ask refuses gets no certificate and its handshake fails", "[integration][tls]") {
  front_fixture f("acme");
  SKIP_UNLESS_READY(f);
  f.start();
  INFO(f.caddy.log());

  tls_connection c;
  CHECK_FALSE(c.open(f.settings.https_port, kOther, f.root));
  INFO("handshake: " << c.error());
  CHECK(f.ask.asked().count(kOther) == 1);
  // Nothing was stored for it, and the allowed name still works on the same front.
  CHECK_FALSE(stored_for(f.settings.storage_dir, kOther));
  std::string error;
  auto answer = tls_get(f.settings.https_port, kSite, f.root, "/", &error);
  INFO(error);
  CHECK(answer.find("upstream host=") != std::string::npos);
  CHECK(stored_for(f.settings.storage_dir, kSite));
}

TEST_CASE("tls front: a certificate is renewed by Caddy before it expires, with no failed handshake",
          "[integration][tls]") {
  // pebble's certificates last 30 s here; Caddy renews when about a third of the lifetime is left.
  front_fixture f("acme", 30);
  SKIP_UNLESS_READY(f);
  f.start();
  INFO(f.caddy.log());

  std::string first_serial;
  int64_t first_left = 0;
  {
    tls_connection c;
    bool opened = c.open(f.settings.https_port, kSite, f.root);
    INFO(c.error());
    REQUIRE(opened);
    first_serial = c.peer_serial();
    first_left = c.peer_seconds_left();
  }
  REQUIRE(first_left > 0);
  REQUIRE(first_left <= 30);
  // A handshake every 250 ms until another certificate is served; every one must succeed and be
  // valid (the client refuses an expired one).
  std::string serial = first_serial, last_error;
  int handshakes = 0, failed = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(first_left + 15);
  while (serial == first_serial && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(250ms);
    tls_connection c;
    ++handshakes;
    if (!c.open(f.settings.https_port, kSite, f.root)) {
      ++failed;
      last_error = c.error();
      continue;
    }
    serial = c.peer_serial();
  }
  INFO(handshakes << " handshakes, " << failed << " failed; last error: " << last_error);
  CHECK(serial != first_serial);
  CHECK(failed == 0);
}

TEST_CASE("tls front: plain HTTP is redirected to HTTPS with 308, host and URI kept", "[integration][tls]") {
  front_fixture f("internal");
  SKIP_UNLESS_READY(f);
  f.start();

  auto r = raw_request(f.settings.http_port,
                       std::string("GET /a/b?c=1&d=2 HTTP/1.1\r\nHost: ") + kSite + ":" +
                           std::to_string(f.settings.http_port) + "\r\nConnection: close\r\n\r\n");
  INFO(r.describe());
  CHECK(r.status == 308);
  CHECK(r.header("Location") ==
        std::string("https://") + kSite + ":" + std::to_string(f.settings.https_port) + "/a/b?c=1&d=2");
  // A POST is redirected the same way (308 keeps the method; nothing reaches the upstream).
  auto p = raw_request(f.settings.http_port, std::string("POST /form HTTP/1.1\r\nHost: ") + kSite +
                                                 "\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
  CHECK(p.status == 308);
  CHECK(p.header("Location") == std::string("https://") + kSite + ":" + std::to_string(f.settings.https_port) + "/form");
}

TEST_CASE("tls front: HTTP/2 is negotiated by ALPN and answers", "[integration][tls]") {
  front_fixture f("internal");
  SKIP_UNLESS_READY(f);
  f.start();

  tls_connection h2;
  bool h2_open = h2.open(f.settings.https_port, kSite, f.root, {"h2", "http/1.1"});
  INFO(h2.error());
  REQUIRE(h2_open);
  CHECK(h2.alpn() == "h2");
  // The HTTP/2 connection preface; the server answers with its SETTINGS frame (type 4).
  REQUIRE(h2.write(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9)));
  for (int i = 0; i < 100 && h2.received().size() < 9; ++i) h2.read_for(100ms);
  REQUIRE(h2.received().size() >= 9);
  CHECK(h2.received()[3] == 0x04);

  // A real HTTP/2 request, when curl is there to make one.
  if (::access("/usr/bin/curl", X_OK) == 0) {
    process curl;
    std::string out = f.tmp / "curl.out";
    curl.start({"/usr/bin/curl", "-sS", "--http2", "--max-time", "10", "--cacert", f.root, "--resolve",
                std::string(kSite) + ":" + std::to_string(f.settings.https_port) + ":127.0.0.1", "-w",
                "\nversion=%{http_version}\n",
                std::string("https://") + kSite + ":" + std::to_string(f.settings.https_port) + "/h2"},
               {}, out);
    CHECK(curl.wait(15s) == 0);
    auto text = read_file(out);
    INFO(text);
    CHECK(text.find("version=2") != std::string::npos);
    CHECK(text.find("proto=https path=/h2") != std::string::npos);
  }
}

TEST_CASE("tls front: internal mode serves a certificate chaining to the root in storage_dir", "[integration][tls]") {
  front_fixture f("internal");
  SKIP_UNLESS_READY(f);
  f.start();
  CHECK(f.root == f.settings.storage_dir + "/pki/authorities/local/root.crt");
  CHECK(std::filesystem::exists(f.settings.storage_dir + "/pki/authorities/local/intermediate.crt"));

  tls_connection c;
  bool c_open = c.open(f.settings.https_port, kSite, f.root);
  INFO(c.error());
  REQUIRE(c_open);
  CHECK(c.peer_names() == std::vector<std::string>{kSite});
  CHECK(c.peer_issuer().find("Caddy Local Authority") != std::string::npos);
  CHECK(c.peer_seconds_left() > 11 * 3600);  // 12 h leaves, as tls_front.hpp says
  CHECK(c.peer_seconds_left() <= 12 * 3600);
  REQUIRE(c.write(std::string("GET / HTTP/1.1\r\nHost: ") + kSite + "\r\nConnection: close\r\n\r\n"));
  c.read_for(10s);
  CHECK(c.received().find("proto=https") != std::string::npos);
  // The ask gates the internal CA too.
  tls_connection refused;
  CHECK_FALSE(refused.open(f.settings.https_port, kOther, f.root));
}

TEST_CASE("tls front: a WebSocket upgrade passes through and echoes, and streamed answers are not buffered",
          "[integration][tls]") {
  front_fixture f("internal");
  SKIP_UNLESS_READY(f);
  f.start();

  tls_connection ws;
  bool ws_open = ws.open(f.settings.https_port, kSite, f.root);
  INFO(ws.error());
  REQUIRE(ws_open);
  REQUIRE(ws.write(std::string("GET /chat HTTP/1.1\r\nHost: ") + kSite +
                   "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
  REQUIRE(ws.read_until("\r\n\r\n", 10s));
  INFO(ws.received());
  REQUIRE(ws.received().rfind("HTTP/1.1 101", 0) == 0);
  CHECK(ws.received().find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != std::string::npos);  // RFC 6455's example
  for (int i = 0; i < 3; ++i) {
    ws.clear_received();
    std::string text = "hello " + std::to_string(i);
    REQUIRE(ws.write(ws_client_text_frame(text)));
    REQUIRE(ws.read_until(text, 5s));
    CHECK(ws_first_server_text(ws.received()) == text);
  }

  // GET /stream sends "chunk 1" and holds "chunk 2" back until released: chunk 1 must reach
  // the client on its own (a buffering front would hold it until the answer ends).
  tls_connection s;
  bool s_open = s.open(f.settings.https_port, kSite, f.root);
  INFO(s.error());
  REQUIRE(s_open);
  REQUIRE(s.write(std::string("GET /stream HTTP/1.1\r\nHost: ") + kSite + "\r\n\r\n"));
  CHECK(s.read_until("chunk 1", 5s));
  CHECK(s.received().find("chunk 2") == std::string::npos);
  f.upstream.release_streams();
  CHECK(s.read_until("chunk 2", 10s));
}
