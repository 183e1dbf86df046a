#include "cpu_ceilings.h"

#include <omp.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include <pixgrad/kernels/cpu/gemm.h>

namespace pixgrad::bench {

namespace cpu = kernels::cpu;

namespace {

// 64-byte aligned host memory (like pixgrad's tensor storage).
struct HostBuffer {
  float* data = nullptr;
  explicit HostBuffer(size_t count) {
    data = static_cast<float*>(std::aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64));
    if (!data) throw std::bad_alloc();
  }
  ~HostBuffer() { std::free(data); }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
};

// Independent FMA chains in registers, per thread; returns FLOPs done (and
// a sum the caller keeps, so the chains cannot be dropped).
#if defined(__x86_64__)
constexpr int kFmaChains = 12;

__attribute__((target("avx512f"))) double fma_loop_avx512(int64_t iterations, float* keep) {
  __m512 a[kFmaChains];
  for (int k = 0; k < kFmaChains; ++k) a[k] = _mm512_set1_ps(1.0f + 1e-3f * k);
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
  for (int64_t i = 0; i < iterations; ++i)
    for (int k = 0; k < kFmaChains; ++k) a[k] = _mm512_fmadd_ps(a[k], b, c);
  float lanes[16];
  for (int k = 1; k < kFmaChains; ++k) a[0] = _mm512_add_ps(a[0], a[k]);
  _mm512_storeu_ps(lanes, a[0]);
  for (float lane : lanes) *keep += lane;
  return 2.0 * 16 * kFmaChains * static_cast<double>(iterations);
}

__attribute__((target("avx2,fma"))) double fma_loop_avx2(int64_t iterations, float* keep) {
  __m256 a[kFmaChains];
  for (int k = 0; k < kFmaChains; ++k) a[k] = _mm256_set1_ps(1.0f + 1e-3f * k);
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  for (int64_t i = 0; i < iterations; ++i)
    for (int k = 0; k < kFmaChains; ++k) a[k] = _mm256_fmadd_ps(a[k], b, c);
  float lanes[8];
  for (int k = 1; k < kFmaChains; ++k) a[0] = _mm256_add_ps(a[0], a[k]);
  _mm256_storeu_ps(lanes, a[0]);
  for (float lane : lanes) *keep += lane;
  return 2.0 * 8 * kFmaChains * static_cast<double>(iterations);
}
#endif

double fma_loop_portable(int64_t iterations, float* keep) {
  float a[8];
  for (int k = 0; k < 8; ++k) a[k] = 1.0f + 1e-3f * k;
  for (int64_t i = 0; i < iterations; ++i)
    for (float& x : a) x = x * 0.999999f + 1e-6f;
  for (float x : a) *keep += x;
  return 2.0 * 8 * static_cast<double>(iterations);
}

}  // namespace

// Copies 256 MiB between two buffers on all threads; the best of 10 copies,
// in GB/s of bytes read + written.
double cpu_copy_gbps() {
  const size_t count = size_t{64} << 20;
  HostBuffer source(count), destination(count);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < static_cast<int64_t>(count); ++i) {
    source.data[i] = static_cast<float>(i & 1023);
    destination.data[i] = 0;
  }
  std::vector<double> times;
  for (int rep = 0; rep < 11; ++rep) {
    const auto start = std::chrono::steady_clock::now();
#pragma omp parallel
    {
      const size_t threads = static_cast<size_t>(omp_get_num_threads());
      const size_t chunk = (count + threads - 1) / threads;
      const size_t begin = std::min(count, chunk * static_cast<size_t>(omp_get_thread_num()));
      const size_t end = std::min(count, begin + chunk);
      if (end > begin) std::memcpy(destination.data + begin, source.data + begin, (end - begin) * sizeof(float));
    }
    const auto stop = std::chrono::steady_clock::now();
    if (rep > 0) times.push_back(std::chrono::duration<double>(stop - start).count());
  }
  return 2.0 * count * sizeof(float) / *std::min_element(times.begin(), times.end()) / 1e9;
}

// The FMA rate of all threads together, on the widest vectors the CPU has
// (the best of 5 runs).
double cpu_fma_gflops() {
  const cpu::SgemmIsa isa = cpu::sgemm_best_isa();
  const int64_t iterations = isa == cpu::SgemmIsa::Scalar ? 20'000'000 : 5'000'000;
  std::vector<double> rates;
  for (int rep = 0; rep < 6; ++rep) {
    double flops = 0;
    float keep = 0;
    const auto start = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : flops, keep)
    {
#if defined(__x86_64__)
      if (isa == cpu::SgemmIsa::Avx512)
        flops += fma_loop_avx512(iterations, &keep);
      else if (isa == cpu::SgemmIsa::Avx2)
        flops += fma_loop_avx2(iterations, &keep);
      else
#endif
        flops += fma_loop_portable(iterations, &keep);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (keep == -1.0f) std::printf(" ");  // never: uses the chains' result
    if (rep > 0) rates.push_back(flops / seconds / 1e9);
  }
  return *std::max_element(rates.begin(), rates.end());
}

}  // namespace pixgrad::bench
