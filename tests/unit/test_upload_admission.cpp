// Which requests are source uploads (http/admission.cpp): they may carry --max-upload-bytes
// instead of --max-body-bytes, need Content-Length, and get a body clock that grows with them.
#include <catch2/catch.hpp>

#include "http/connection.hpp"

using namespace berth::http::connection_detail;
using namespace std::chrono_literals;

namespace {

httplib::Request request(const std::string& method, const std::string& path) {
  httplib::Request r;
  r.method = method;
  r.path = path;
  return r;
}

}  // namespace

TEST_CASE("upload admission: only PUT of a project's source or one of its files is an upload", "[http]") {
  CHECK(is_upload_route(request("PUT", "/api/projects/shop/source")));
  CHECK(is_upload_route(request("PUT", "/api/projects/shop/source/src/app.js")));
  CHECK(is_upload_route(request("PUT", "/api/projects/shop/source/../x")));  // refused by the route itself
  CHECK_FALSE(is_upload_route(request("GET", "/api/projects/shop/source")));
  CHECK_FALSE(is_upload_route(request("DELETE", "/api/projects/shop/source/a")));
  CHECK_FALSE(is_upload_route(request("POST", "/api/projects/shop/source")));
  CHECK_FALSE(is_upload_route(request("PUT", "/api/projects/shop")));
  CHECK_FALSE(is_upload_route(request("PUT", "/api/projects/shop/source/")));
  CHECK_FALSE(is_upload_route(request("PUT", "/api/projects/shop/sources")));
  CHECK_FALSE(is_upload_route(request("PUT", "/api/projects//source")));
  CHECK_FALSE(is_upload_route(request("PUT", "/api/projects/shop/preview/source")));
  CHECK_FALSE(is_upload_route(request("PUT", "/api/projectsX/shop/source")));
}

TEST_CASE("upload admission: the body clock is 30 s plus a second per MiB declared", "[http]") {
  CHECK(upload_body_timeout(0) == 30s);
  CHECK(upload_body_timeout(1 << 20) == 31s);
  CHECK(upload_body_timeout(512ull << 20) == 542s);
}
