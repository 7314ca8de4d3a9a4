// What the file benchmarks share (bench_packaging, bench_workspace_tree, bench_upload_extract,
// bench_tree_apply, bench_workspace): random file contents and their clocks.
#pragma once
#include <chrono>
#include <cstddef>
#include <random>

namespace berth::bench {

// Fills the whole 8-byte words of [p, p+n) with `rng`'s output (nothing compresses or dedups by
// accident); a tail shorter than 8 bytes is left as it was, so a tree is the same for a seed.
void fill_random(std::mt19937_64& rng, char* p, size_t n);

// Wall time since `t0`, in ms.
double ms_since(std::chrono::steady_clock::time_point t0);

// CPU time (user + system) so far of the calling thread / of the whole process, in ms: on a
// shared, loaded machine the wall time is mostly waiting for a core or the disk.
double thread_cpu_ms();
double process_cpu_ms();

}  // namespace berth::bench
