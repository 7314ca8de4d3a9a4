// runtime/proxy/tls_front: the static Caddy config of the sites' TLS front (pure functions).
// The real Caddy + pebble checks are in tests/integration/test_tls_front.cpp.
#include <catch2/catch.hpp>

#include "runtime/proxy/tls_front.hpp"

using namespace berth;
using json = nlohmann::json;

namespace {

tls_front_settings acme_settings() {
  tls_front_settings s;
  s.mode = "acme";
  s.acme_directory = "https://127.0.0.1:14000/dir";
  s.acme_email = "ops@example.com";
  s.acme_ca_root = "/srv/pebble/cert.pem";
  s.listen_host = "0.0.0.0";
  s.http_port = 8080;
  s.https_port = 8443;
  s.upstream_port = 9001;
  s.ask_port = 9002;
  s.admin_socket = "/var/lib/berth/proxy/admin/front.sock";
  s.storage_dir = "/var/lib/berth/proxy/tls";
  return s;
}

}  // namespace

TEST_CASE("tls front config: admin on the unix socket, storage, both servers, on-demand ACME", "[tls]") {
  auto s = acme_settings();
  REQUIRE(check_tls_front(s));
  json c = tls_front_config(s);
  CHECK(c["admin"]["listen"] == "unix//var/lib/berth/proxy/admin/front.sock");
  CHECK(c["storage"] == json({{"module", "file_system"}, {"root", "/var/lib/berth/proxy/tls"}}));

  auto& http = c["apps"]["http"];
  CHECK(http["http_port"] == 8080);
  CHECK(http["https_port"] == 8443);
  auto& https = http["servers"]["https"];
  CHECK(https["listen"] == json::array({"0.0.0.0:8443"}));
  CHECK(https["automatic_https"]["disable"] == true);
  CHECK(https["protocols"] == json::array({"h1", "h2"}));
  CHECK(https["tls_connection_policies"][0]["alpn"] == json::array({"h2", "http/1.1"}));
  REQUIRE(https["routes"].size() == 1);
  auto& proxy = https["routes"][0]["handle"][0];
  CHECK(proxy["handler"] == "reverse_proxy");
  CHECK(proxy["upstreams"] == json::array({{{"dial", "127.0.0.1:9001"}}}));
  CHECK(proxy["flush_interval"] == -1);
  CHECK(proxy["headers"]["request"]["set"]["X-Forwarded-Proto"] == json::array({"https"}));
  CHECK_FALSE(proxy["headers"]["request"]["set"].contains("Host"));  // Host is kept as sent

  auto& plain = http["servers"]["http"];
  CHECK(plain["listen"] == json::array({"0.0.0.0:8080"}));
  auto& redirect = plain["routes"][0]["handle"][0];
  CHECK(redirect["status_code"] == 308);
  CHECK(redirect["headers"]["Location"] == json::array({"https://{http.request.host}:8443{http.request.uri}"}));

  auto& automation = c["apps"]["tls"]["automation"];
  CHECK(automation["on_demand"]["ask"] == "http://127.0.0.1:9002/ask");
  REQUIRE(automation["policies"].size() == 1);
  CHECK(automation["policies"][0]["on_demand"] == true);
  CHECK_FALSE(automation["policies"][0].contains("subjects"));  // every name
  CHECK(automation["policies"][0]["issuers"] ==
        json::array({{{"module", "acme"},
                      {"ca", "https://127.0.0.1:14000/dir"},
                      {"email", "ops@example.com"},
                      {"trusted_roots_pem_files", json::array({"/srv/pebble/cert.pem"})}}}));
  CHECK(c["apps"]["pki"]["certificate_authorities"]["local"]["install_trust"] == false);
}

TEST_CASE("tls front config: port 443 needs no port in the redirect - internal issuer - system roots", "[tls]") {
  auto s = acme_settings();
  s.https_port = 443;
  s.acme_ca_root = "";
  s.acme_email = "";
  json c = tls_front_config(s);
  CHECK(c["apps"]["http"]["servers"]["http"]["routes"][0]["handle"][0]["headers"]["Location"] ==
        json::array({"https://{http.request.host}{http.request.uri}"}));
  CHECK(c["apps"]["tls"]["automation"]["policies"][0]["issuers"][0] ==
        json({{"module", "acme"}, {"ca", "https://127.0.0.1:14000/dir"}}));

  s.mode = "internal";
  REQUIRE(check_tls_front(s));
  c = tls_front_config(s);
  CHECK(c["apps"]["tls"]["automation"]["policies"][0]["issuers"] == json::array({{{"module", "internal"}}}));
  CHECK(tls_front_internal_root(s.storage_dir) == "/var/lib/berth/proxy/tls/pki/authorities/local/root.crt");
  CHECK(tls_front_command("/usr/bin/caddy", "/d/front.json") ==
        std::vector<std::string>{"/usr/bin/caddy", "run", "--config", "/d/front.json"});
}

TEST_CASE("tls front config: bad settings are refused", "[tls]") {
  auto bad = [](auto change) {
    auto s = acme_settings();
    change(s);
    auto st = check_tls_front(s);
    INFO(st.message());
    return !st && st.which() == status::code::invalid_argument;
  };
  CHECK(bad([](tls_front_settings& s) { s.mode = "off"; }));
  CHECK(bad([](tls_front_settings& s) { s.acme_directory = ""; }));
  CHECK(bad([](tls_front_settings& s) { s.acme_directory = "ftp://ca/dir"; }));
  CHECK(bad([](tls_front_settings& s) { s.acme_ca_root = "relative.pem"; }));
  CHECK(bad([](tls_front_settings& s) { s.listen_host = ""; }));
  CHECK(bad([](tls_front_settings& s) { s.http_port = 0; }));
  CHECK(bad([](tls_front_settings& s) { s.ask_port = 0; }));
  CHECK(bad([](tls_front_settings& s) { s.upstream_port = s.https_port; }));
  CHECK(bad([](tls_front_settings& s) { s.http_port = s.ask_port; }));
  CHECK(bad([](tls_front_settings& s) { s.admin_socket = "front.sock"; }));
  CHECK(bad([](tls_front_settings& s) { s.admin_socket = "/" + std::string(200, 'a'); }));
  CHECK(bad([](tls_front_settings& s) { s.storage_dir = "tls"; }));
  // internal mode needs no ACME directory
  auto s = acme_settings();
  s.mode = "internal";
  s.acme_directory = "";
  CHECK(check_tls_front(s));
}
