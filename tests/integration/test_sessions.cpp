// Dashboard sessions against a real `berth serve`: the token is exchanged once for a signed,
// HttpOnly, SameSite=Strict cookie; with it GET works and every other method needs the
// session's X-CSRF-Token; a wrong token gets 401 and no cookie; tampered, foreign and expired
// cookies are refused; the dashboard's files are served without a token, with strict headers.
#include <sys/wait.h>

#include <cstdio>
#include <regex>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "http/session.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;

namespace {

struct signed_in {
  std::string cookie;  // "berth_session=<value>", as a browser sends it back
  std::string csrf;
  std::string set_cookie;
};

signed_in sign_in(uint16_t port, const std::string& token) {
  client c(port, auth::none());
  auto r = c.post("/api/session", json{{"token", token}});
  INFO(r.describe());
  REQUIRE(r.status == 200);
  signed_in s;
  s.set_cookie = r.header("Set-Cookie");
  s.cookie = s.set_cookie.substr(0, s.set_cookie.find(';'));
  s.csrf = r.body.value("csrf", "");
  return s;
}

// A request that carries only the cookie (and, when given, a CSRF header).
http_result with_cookie(uint16_t port, const std::string& method, const std::string& path, const std::string& cookie,
                        const std::string& body = "", const std::string& csrf = "") {
  client c(port, auth::none());
  env_list headers{{"Cookie", cookie}};
  if (!csrf.empty()) headers.emplace_back("X-CSRF-Token", csrf);
  return c.send(method, path, body, headers);
}

// A command's stdout (no shell: each argument quoted), for openssl and curl.
std::string output_of(const std::vector<std::string>& argv) {
  std::string line;
  for (auto& a : argv) line += "'" + a + "' ";
  std::string out;
  FILE* p = ::popen((line + "2>/dev/null").c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

const std::string manifest = R"({"name":"db-sess","source":{"path":"/tmp"},"production":{"command":["true"]}})";

}  // namespace

TEST_CASE("sessions - the token is exchanged for an HttpOnly SameSite=Strict cookie that GETs work with",
          "[integration][sessions]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto s = sign_in(srv.port(), srv.token());
  INFO(s.set_cookie);
  CHECK(s.set_cookie.rfind("berth_session=", 0) == 0);
  CHECK(s.set_cookie.find("; HttpOnly") != std::string::npos);
  CHECK(s.set_cookie.find("; SameSite=Strict") != std::string::npos);
  CHECK(s.set_cookie.find("; Path=/") != std::string::npos);
  CHECK(s.set_cookie.find("Secure") == std::string::npos);  // plain HTTP on loopback
  CHECK(s.set_cookie.find(srv.token()) == std::string::npos);
  CHECK(std::regex_match(s.csrf, std::regex("[0-9a-f]{64}")));

  auto list = with_cookie(srv.port(), "GET", "/api/projects", s.cookie);
  INFO(list.describe());
  CHECK(list.status == 200);
  CHECK(list.body["projects"].is_array());
  // A reloaded page gets its CSRF token back from the cookie.
  auto again = with_cookie(srv.port(), "GET", "/api/session", s.cookie);
  CHECK(again.status == 200);
  CHECK(again.body.value("csrf", "") == s.csrf);
  // The bearer token keeps working, and a bearer token wins over a cookie.
  CHECK(http_get(srv.port(), "/api/projects").status == 200);
  client wrong_bearer(srv.port(), auth::bearer("not-the-token-at-all"));
  CHECK(wrong_bearer.send("GET", "/api/projects", "", {{"Cookie", s.cookie}}).status == 401);
}

TEST_CASE("sessions - a wrong or missing token gets 401 or 400 and no cookie", "[integration][sessions]") {
  temp_dir tmp;
  server srv(tmp.path());
  client c(srv.port(), auth::none());
  struct bad {
    std::string body;
    int status;
    std::string code;
  };
  for (auto& b : {bad{R"({"token":"wrong-token-wrong-token"})", 401, "unauthorized"},
                  bad{R"({"token":""})", 401, "unauthorized"},
                  bad{R"({"token":42})", 400, "invalid_request"},
                  bad{R"({"token":"x","extra":1})", 400, "invalid_request"},
                  bad{"not json", 400, "invalid_request"},
                  bad{"", 400, "invalid_request"}}) {
    auto r = c.post("/api/session", b.body);
    INFO(b.body << " -> " << r.describe());
    CHECK(r.status == b.status);
    CHECK(r.error_code() == b.code);
    CHECK(r.header("Set-Cookie").empty());
  }
  // Without anything, the API stays closed.
  CHECK(c.get("/api/projects").status == 401);
  CHECK(c.get("/api/session").status == 401);
}

TEST_CASE("sessions - with the cookie, a state-changing call needs the session's CSRF token",
          "[integration][sessions]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto s = sign_in(srv.port(), srv.token());

  auto none = with_cookie(srv.port(), "POST", "/api/projects", s.cookie, manifest);
  INFO(none.describe());
  CHECK(none.status == 403);
  CHECK(none.error_code() == "csrf");
  auto wrong = with_cookie(srv.port(), "POST", "/api/projects", s.cookie, manifest, std::string(64, 'a'));
  CHECK(wrong.status == 403);
  // Another session's CSRF token does not fit this one.
  auto other = sign_in(srv.port(), srv.token());
  CHECK(with_cookie(srv.port(), "POST", "/api/projects", s.cookie, manifest, other.csrf).status == 403);
  // Nothing was created by the refused calls.
  CHECK(http_get(srv.port(), "/api/check/db-sess").body.value("available", false));

  auto ok = with_cookie(srv.port(), "POST", "/api/projects", s.cookie, manifest, s.csrf);
  INFO(ok.describe());
  CHECK(ok.status == 201);
  CHECK(with_cookie(srv.port(), "DELETE", "/api/projects/db-sess", s.cookie).status == 403);
  CHECK(http_get(srv.port(), "/api/projects/db-sess").status == 200);
  CHECK(with_cookie(srv.port(), "DELETE", "/api/projects/db-sess", s.cookie, "", s.csrf).status == 200);
}

TEST_CASE("sessions - tampered, foreign and expired cookies are refused", "[integration][sessions]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto s = sign_in(srv.port(), srv.token());
  auto value = s.cookie.substr(s.cookie.find('=') + 1);

  auto tampered = value;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  // A later expiry with the old signature.
  auto id = value.substr(0, value.find('.'));
  auto sig = value.substr(value.rfind('.') + 1);
  auto extended = id + ".9999999999." + sig;
  // Signed with another token (a session of another berth).
  berth::http::session mine{id, berth::http::unix_now() + 3600};
  auto foreign = berth::http::sign_session(mine, "another-token-another-token");
  // Signed with this berth's token, but expired.
  berth::http::session old{id, berth::http::unix_now() - 1};
  auto expired = berth::http::sign_session(old, srv.token());
  for (auto& v : {tampered, extended, foreign, expired, std::string("garbage"), std::string()}) {
    auto r = with_cookie(srv.port(), "GET", "/api/projects", "berth_session=" + v);
    INFO(v << " -> " << r.describe());
    CHECK(r.status == 401);
    CHECK(r.error_code() == "unauthorized");
  }
  // The same construction with the right token and a future expiry is accepted: the checks
  // above fail for the reason they name.
  auto fresh = berth::http::sign_session(mine, srv.token());
  CHECK(with_cookie(srv.port(), "GET", "/api/projects", "other=1; berth_session=" + fresh).status == 200);
}

TEST_CASE("sessions - signing out clears the cookie", "[integration][sessions]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto s = sign_in(srv.port(), srv.token());
  CHECK(with_cookie(srv.port(), "DELETE", "/api/session", s.cookie).status == 403);  // CSRF applies
  auto out = with_cookie(srv.port(), "DELETE", "/api/session", s.cookie, "", s.csrf);
  INFO(out.describe());
  CHECK(out.status == 200);
  auto cleared = out.header("Set-Cookie");
  CHECK(cleared.rfind("berth_session=;", 0) == 0);
  CHECK(cleared.find("Max-Age=0") != std::string::npos);
}

TEST_CASE("sessions - the dashboard is served without a token, with strict headers", "[integration][sessions]") {
  temp_dir tmp;
  server srv(tmp.path());
  client c(srv.port(), auth::none());
  auto page = c.get("/");
  INFO(page.describe());
  REQUIRE(page.status == 200);
  CHECK(page.header("Content-Type").rfind("text/html", 0) == 0);
  CHECK(page.header("Content-Security-Policy").find("default-src 'self'") != std::string::npos);
  CHECK(page.header("X-Frame-Options") == "DENY");
  CHECK(!page.header("Cache-Control").empty());
  CHECK(page.raw.find("<title>berth</title>") != std::string::npos);
  // Every script is a file of its own (the policy forbids inline ones), and each is served.
  std::regex script("<script([^>]*)>");
  int scripts = 0;
  for (std::sregex_iterator it(page.raw.begin(), page.raw.end(), script), end; it != end; ++it) {
    std::smatch src;
    std::string attrs = (*it)[1];
    REQUIRE(std::regex_search(attrs, src, std::regex("src=\"(/[a-z]+\\.js)\"")));
    auto js = c.get(src[1]);
    CHECK(js.status == 200);
    CHECK(js.header("Content-Type").rfind("text/javascript", 0) == 0);
    ++scripts;
  }
  CHECK(scripts >= 2);
  CHECK(page.raw.find("http://") == std::string::npos);
  CHECK(page.raw.find("https://") == std::string::npos);
  CHECK(c.get("/style.css").header("Content-Type").rfind("text/css", 0) == 0);
  CHECK(c.get("/index.html").status == 200);
  // Only the dashboard's own files are open: anything else still needs the token.
  CHECK(c.get("/secret.js").status == 401);
  CHECK(c.get("/api/projects").status == 401);
}

TEST_CASE("sessions - over TLS the cookie is Secure", "[integration][sessions][tls]") {
  temp_dir tmp;
  const std::string token = "db-tls-session-token-0123456789";
  auto cert = tmp / "cert.pem", key = tmp / "key.pem";
  output_of({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
             "subjectAltName=IP:127.0.0.1"});
  auto port = free_port();
  process berth;
  berth.start({berth_binary, "serve", "--listen", "127.0.0.1:" + std::to_string(port), "--data", tmp / "data",
               "--token", token, "--tls-cert", cert, "--tls-key", key, "--switch-mode", "direct"},
              {}, tmp / "server.log");
  auto url = "https://127.0.0.1:" + std::to_string(port);
  std::string head;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
       std::chrono::steady_clock::now() < until && berth.running();) {
    head = output_of({"curl", "-sS", "-D", "-", "-o", "/dev/null", "--max-time", "5", "--cacert", cert, "-H",
                      "Content-Type: application/json", "--data", "{\"token\":\"" + token + "\"}", url + "/api/session"});
    if (head.find(" 200") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO(head);
  std::smatch m;
  REQUIRE(std::regex_search(head, m, std::regex("[Ss]et-[Cc]ookie: ([^\r\n]*)")));
  std::string set_cookie = m[1];
  CHECK(set_cookie.find("; Secure") != std::string::npos);
  CHECK(set_cookie.find("; HttpOnly") != std::string::npos);
  berth.kill9();
}
