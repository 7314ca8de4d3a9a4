// SHA-256 for the event log: sha256_hex and event_hash, the hash every event of the chain
// carries (OpenSSL 3 EVP; the digest is fetched once, contexts are reused per thread).
#include <openssl/evp.h>

#include <new>
#include <stdexcept>

#include "runtime/eventlog/event_codec.hpp"
#include "runtime/eventlog/event_log.hpp"

namespace berth {

namespace {

using detail::put_be64;

const EVP_MD* sha256_md() {
  static const EVP_MD* md = [] {
    const EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return m != nullptr ? m : EVP_sha256();
  }();
  return md;
}

struct md_ctx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~md_ctx() { EVP_MD_CTX_free(ctx); }
};

EVP_MD_CTX* thread_ctx() {
  thread_local md_ctx c;
  if (c.ctx == nullptr) throw std::bad_alloc();
  return c.ctx;
}

std::string to_hex(const unsigned char* d, unsigned n) {
  static const char* digits = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (unsigned i = 0; i < n; ++i) {
    s[2 * i] = digits[d[i] >> 4];
    s[2 * i + 1] = digits[d[i] & 0xf];
  }
  return s;
}

void digest_update(EVP_MD_CTX* ctx, const void* p, size_t n) {
  if (n > 0 && EVP_DigestUpdate(ctx, p, n) != 1)
    throw std::runtime_error("EVP_DigestUpdate failed");
}

// Length-prefixed field: 8-byte big-endian length, then the bytes.
void digest_field(EVP_MD_CTX* ctx, const std::string& s) {
  char len[8];
  put_be64(len, s.size());
  digest_update(ctx, len, 8);
  digest_update(ctx, s.data(), s.size());
}

void digest_u64(EVP_MD_CTX* ctx, uint64_t v) {
  char b[8];
  put_be64(b, v);
  digest_update(ctx, b, 8);
}

}  // namespace

std::string sha256_hex(const std::string& bytes) {
  auto* ctx = thread_ctx();
  if (EVP_DigestInit_ex(ctx, sha256_md(), nullptr) != 1)
    throw std::runtime_error("EVP_DigestInit_ex failed");
  digest_update(ctx, bytes.data(), bytes.size());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (EVP_DigestFinal_ex(ctx, md, &n) != 1) throw std::runtime_error("EVP_DigestFinal_ex failed");
  return to_hex(md, n);
}

// Encoding: "berth-event-v1", then prev_hash, seq, stream, type, ts_us, data, where every
// string is length-prefixed (8-byte big-endian) and integers are 8-byte big-endian.
std::string event_hash(const event_record& e) {
  static const std::string domain = "berth-event-v1";
  auto* ctx = thread_ctx();
  if (EVP_DigestInit_ex(ctx, sha256_md(), nullptr) != 1)
    throw std::runtime_error("EVP_DigestInit_ex failed");
  digest_field(ctx, domain);
  digest_field(ctx, e.prev_hash);
  digest_u64(ctx, e.seq);
  digest_field(ctx, e.stream);
  digest_field(ctx, e.type);
  digest_u64(ctx, static_cast<uint64_t>(e.ts_us));
  digest_field(ctx, e.data);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (EVP_DigestFinal_ex(ctx, md, &n) != 1) throw std::runtime_error("EVP_DigestFinal_ex failed");
  return to_hex(md, n);
}

}  // namespace berth
