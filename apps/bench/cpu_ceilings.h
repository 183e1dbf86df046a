// The CPU's two measured ceilings, which apps/bench_kernels holds every CPU
// kernel to and apps/bench_pix2pix holds the whole CPU training step to
// (docs/perf.md). Measured, not taken from a datasheet; both use all OpenMP
// threads (omp_get_max_threads()), so set the thread count first.
//   copy  a 256 MiB memcpy split over the threads, counting the bytes read
//         plus the bytes written; allocates 512 MiB for the duration;
//   FMA   independent FP32 fused multiply-adds in registers on the widest
//         vectors the CPU has (AVX-512, AVX2, else scalar), 2 FLOP per FMA.
#pragma once

namespace pixgrad::bench {

// The best of 10 copies (after a warm-up one), in GB/s (1e9 bytes).
double cpu_copy_gbps();
// The best of 5 runs (after a warm-up one), in GFLOP/s.
double cpu_fma_gflops();

}  // namespace pixgrad::bench
