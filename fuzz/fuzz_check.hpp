// FUZZ_CHECK(cond): a broken invariant is a finding. It prints the condition and aborts, so
// libFuzzer keeps the input as crash-<sha1> like any sanitizer report.
#pragma once
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                    \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond);    \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)
