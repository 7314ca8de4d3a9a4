// Dashboard session cookies (http/session.hpp): the Cookie header of any request without an
// Authorization header reaches cookie_value() and verify_session() before anything else.
// Input: the header. Checked: nothing crashes; a value the fuzzer makes up is never accepted
// (it would have to forge an HMAC-SHA256); a session signed here round-trips; a signed value
// with any one byte changed is refused.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.hpp"
#include "http/session.hpp"

using namespace berth::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string token = "fuzz-token-fuzz-token-fuzz-token";
  const int64_t now = 1'800'000'000;
  std::string header(reinterpret_cast<const char*>(data), size);
  auto value = cookie_value(header, session_cookie);
  FUZZ_CHECK(value.size() <= header.size());
  FUZZ_CHECK(!verify_session(value, token, now));
  FUZZ_CHECK(!verify_session(header, token, now));

  // A real session whose id and expiry come from the input.
  session s;
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < 32; ++i) s.id += digits[i < size ? data[i] & 15 : 0];
  s.expires = now + 1 + (size > 32 ? data[32] : 0);
  auto signed_value = sign_session(s, token);
  auto back = verify_session(cookie_value("a=b; " + std::string(session_cookie) + "=" + signed_value + "; c=d",
                                          session_cookie),
                             token, now);
  FUZZ_CHECK(back && back->id == s.id && back->expires == s.expires);
  FUZZ_CHECK(!verify_session(signed_value, token, s.expires));  // expired at its expiry
  FUZZ_CHECK(!verify_session(signed_value, token + "x", now));
  if (size > 33) {
    auto changed = signed_value;
    size_t at = data[33] % changed.size();
    changed[at] = changed[at] == '0' ? '1' : '0';
    FUZZ_CHECK(!verify_session(changed, token, now));
  }
  FUZZ_CHECK(csrf_token(s, token) != csrf_token(s, token + "x"));
  return 0;
}
