#include "bench/common/bench_trees.hpp"

#include <sys/resource.h>

#include <cstdint>
#include <cstring>

namespace berth::bench {

namespace {

double cpu_ms(int who) {
  rusage ru{};
  ::getrusage(who, &ru);
  auto ms = [](const timeval& t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}

}  // namespace

void fill_random(std::mt19937_64& rng, char* p, size_t n) {
  for (size_t k = 0; k + 8 <= n; k += 8) {
    uint64_t v = rng();
    std::memcpy(p + k, &v, 8);
  }
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double thread_cpu_ms() { return cpu_ms(RUSAGE_THREAD); }
double process_cpu_ms() { return cpu_ms(RUSAGE_SELF); }

}  // namespace berth::bench
