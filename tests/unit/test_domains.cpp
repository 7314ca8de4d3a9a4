// Custom domains: the name rule, the manifest field, the suffix rule and the index that keeps
// them unique across projects.
#include <catch2/catch.hpp>

#include "actors/domain_index.hpp"
#include "messages/domains.hpp"
#include "messages/manifest.hpp"
#include "messages/project_state.hpp"

using namespace berth;
using json = nlohmann::json;

namespace {
json with_domains(json domains) {
  return {{"name", "shop"}, {"source", {{"path", "/srv/shop"}}}, {"domains", std::move(domains)}};
}
}  // namespace

TEST_CASE("domains: lowercase DNS names of two labels or more are accepted", "[domains]") {
  std::string label63(63, 'a');
  std::string long_ok = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');  // 253
  REQUIRE(long_ok.size() == 253);
  for (auto& ok : std::vector<std::string>{"shop.example.com", "example.com", "a.b", "x-1.y2.io", "1.2.3.example",
                                           "xn--bcher-kva.example", label63 + ".com", long_ok}) {
    INFO(ok);
    CHECK(check_domain(ok).empty());
  }
}

TEST_CASE("domains: names that are not lowercase DNS names are refused, saying why", "[domains]") {
  std::string label64(64, 'a');
  std::string label63(63, 'a');
  std::string too_long = label63 + "." + label63 + "." + label63 + "." + std::string(62, 'b');  // 254
  struct bad_case { std::string domain; const char* why; };
  for (auto& c : std::vector<bad_case>{{"", "empty"},
                                       {"localhost", "two labels"},
                                       {"shop", "two labels"},
                                       {"Shop.example.com", "lowercase"},
                                       {"*.example.com", "wildcard"},
                                       {"shop.*.com", "wildcard"},
                                       {"10.0.0.1", "IP address"},
                                       {"127.0.0.1", "IP address"},
                                       {"::1", "IP address"},
                                       {"[::1]", "IP address"},
                                       {"shop.example.com:443", "no port"},
                                       {"shop.example.com.", "end with '.'"},
                                       {".example.com", "empty label"},
                                       {"shop..example.com", "empty label"},
                                       {"-shop.example.com", "'-'"},
                                       {"shop-.example.com", "'-'"},
                                       {"shop.example-", "'-'"},
                                       {"sh_op.example.com", "may contain only"},
                                       {"shop.example.com/x", "may contain only"},
                                       {"sh\xc3\xb6p.example.com", "may contain only"},
                                       {std::string("sh\0p.example.com", 16), "may contain only"},
                                       {"shop example.com", "may contain only"},
                                       {label64 + ".com", "longer than 63"},
                                       {too_long, "too long"}}) {
    INFO(c.domain);
    CHECK_THAT(check_domain(c.domain), Catch::Contains(c.why));
  }
}

TEST_CASE("domains: the manifest field is optional, validated, and round-trips", "[domains]") {
  auto none = parse_manifest({{"name", "shop"}, {"source", {{"path", "/srv/shop"}}}});
  REQUIRE(none.ok);
  CHECK(none.value.domains.empty());
  CHECK_FALSE(to_json(none.value).contains("domains"));

  auto r = parse_manifest(with_domains({"shop.example.com", "www.shop.example.com"}));
  REQUIRE(r.ok);
  CHECK(r.value.domains == std::vector<std::string>{"shop.example.com", "www.shop.example.com"});
  auto again = parse_manifest(to_json(r.value));
  REQUIRE(again.ok);
  CHECK(again.value.domains == r.value.domains);
  // As an event keeps it: a restart folds the same domains back.
  event_record created{1, project_stream("shop"), ev::project_created, 0, project_created_data(r.value, 8001, 4001)};
  project_record p;
  fold(p, created);
  CHECK(p.spec.domains == r.value.domains);
}

TEST_CASE("domains: a bad entry is refused with the field and the index named", "[domains]") {
  json twenty_one = json::array();
  for (int i = 0; i < 21; ++i) twenty_one.push_back("d" + std::to_string(i) + ".example.com");
  json twenty = twenty_one;
  twenty.erase(twenty.size() - 1);
  CHECK(parse_manifest(with_domains(twenty)).ok);
  struct bad_case { json domains; const char* error; };
  for (auto& c : std::vector<bad_case>{{"shop.example.com", "domains: must be an array"},
                                       {json::object(), "domains: must be an array"},
                                       {twenty_one, "domains: has too many entries (at most 20)"},
                                       {{"a.example.com", 5}, "domains[1]: must be a string"},
                                       {{"a.example.com", "*.example.com"}, "domains[1]: '*.example.com' must not be a wildcard"},
                                       {{"Shop.Example.com"}, "domains[0]: 'Shop.Example.com' must be lowercase"},
                                       {{"1.2.3.4"}, "domains[0]: '1.2.3.4' must be a DNS name, not an IP address"},
                                       {{"shop"}, "domains[0]: 'shop' needs at least two labels"},
                                       {{"a.example.com", "b.example.com", "a.example.com"},
                                        "domains[2]: 'a.example.com' is named twice"}}) {
    INFO(c.domains.dump());
    auto r = parse_manifest(with_domains(c.domains));
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.error, Catch::StartsWith(c.error));
  }
}

TEST_CASE("domains: names under the server's domain suffix are berth's", "[domains]") {
  CHECK(domain_under("shop.apps.example.com", "apps.example.com"));
  CHECK(domain_under("apps.example.com", "apps.example.com"));
  CHECK(domain_under("a.b.apps.example.com", "apps.example.com"));
  CHECK_FALSE(domain_under("myapps.example.com", "apps.example.com"));
  CHECK_FALSE(domain_under("example.com", "apps.example.com"));
  CHECK_FALSE(domain_under("shop.example.com", ""));
  CHECK(domain_under("shop.localhost", "localhost"));
  CHECK(domains_under_suffix({"shop.example.com", "shop.localhost"}, "localhost") ==
        "domains[1]: 'shop.localhost' is under this server's domain suffix 'localhost' (those names are berth's: "
        "<project>.localhost)");
  CHECK(domains_under_suffix({"shop.example.com"}, "localhost").empty());
}

TEST_CASE("domains: the index gives each domain to one project", "[domains]") {
  domain_index idx;
  idx.commit("shop", {"shop.example.com", "www.shop.example.com"});
  CHECK_FALSE(idx.taken({"shop.example.com"}, "shop"));  // its own
  auto t = idx.taken({"other.example.com", "www.shop.example.com"}, "blog");
  REQUIRE(t);
  CHECK(t->index == 1);
  CHECK(t->project == "shop");
  CHECK_FALSE(idx.taken({"other.example.com"}, "blog"));

  // An update in flight holds its new domains; a failed one gives them back.
  auto ticket = idx.hold("blog", {"blog.example.com"});
  REQUIRE(idx.taken({"blog.example.com"}, "shop"));
  CHECK(idx.taken({"blog.example.com"}, "shop")->project == "blog");
  idx.release(ticket);
  CHECK_FALSE(idx.taken({"blog.example.com"}, "shop"));

  // An update that drops a domain frees it once recorded.
  ticket = idx.hold("shop", {"shop.example.com"});
  CHECK(idx.taken({"www.shop.example.com"}, "blog"));  // still its, until the update is recorded
  idx.release(ticket);
  idx.commit("shop", {"shop.example.com"});
  CHECK_FALSE(idx.taken({"www.shop.example.com"}, "blog"));
  CHECK(idx.of("shop") == std::vector<std::string>{"shop.example.com"});

  // Deleted: everything free, held ones too.
  idx.hold("shop", {"new.example.com"});
  idx.forget("shop");
  CHECK_FALSE(idx.taken({"shop.example.com", "new.example.com"}, "blog"));
  CHECK(idx.of("shop").empty());
}
