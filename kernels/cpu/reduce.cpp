#include <pixgrad/kernels/cpu/reduce.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace pixgrad::kernels::cpu {

namespace {
constexpr int64_t kParallelThreshold = 1 << 15;
}

// Sums term(i) over [0, n) in fixed chunks whose partial sums are added in
// chunk order: the same result for any thread count and any run (an OpenMP
// reduction combines partials in whatever order threads finish).
template <typename Term>
double deterministic_sum(int64_t n, Term term) {
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for if (n > kParallelThreshold)
  for (int64_t c = 0; c < chunks; ++c) {
    double total = 0;
    const int64_t end = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < end; ++i) total += term(i);
    partial[static_cast<size_t>(c)] = total;
  }
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

template <typename T>
void sum(Host, const T* x, int64_t n, T* out) {
  out[0] = static_cast<T>(deterministic_sum(n, [=](int64_t i) { return static_cast<double>(x[i]); }));
}

template <typename T>
void sum_abs_difference(Host, const T* a, const T* b, int64_t n, double scale, T* out) {
  const double total =
      deterministic_sum(n, [=](int64_t i) { return std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])); });
  out[0] = static_cast<T>(total * scale);
}

template <typename T>
void sign_of_difference(Host, const T* a, const T* b, const T* grad_scalar, double scale, T* grad_a, int64_t n) {
  const T s = static_cast<T>(static_cast<double>(grad_scalar[0]) * scale);
#pragma omp parallel for simd if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) grad_a[i] = a[i] > b[i] ? s : (a[i] < b[i] ? -s : T(0));
}

// Per channel in double (a plane holds up to 128*128 terms per image) over 8
// interleaved partial sums: one running sum would serialise on the add latency.
template <typename T>
void sum_per_channel(Host, const T* x, int64_t batch, int64_t channels, int64_t spatial, T* out) {
  constexpr int kLanes = 8;
#pragma omp parallel for schedule(static) if (batch * channels * spatial > kParallelThreshold)
  for (int64_t c = 0; c < channels; ++c) {
    double lanes[kLanes] = {};
    for (int64_t b = 0; b < batch; ++b) {
      const T* row = x + (b * channels + c) * spatial;
      int64_t i = 0;
      for (; i + kLanes <= spatial; i += kLanes)
        for (int l = 0; l < kLanes; ++l) lanes[l] += row[i + l];
      for (; i < spatial; ++i) lanes[0] += row[i];
    }
    double total = 0.0;
    for (double lane : lanes) total += lane;
    out[c] = static_cast<T>(total);
  }
}

#define PIXGRAD_INSTANTIATE(T)                                                                   \
  template void sum<T>(Host, const T*, int64_t, T*);                                            \
  template void sum_abs_difference<T>(Host, const T*, const T*, int64_t, double, T*);           \
  template void sign_of_difference<T>(Host, const T*, const T*, const T*, double, T*, int64_t); \
  template void sum_per_channel<T>(Host, const T*, int64_t, int64_t, int64_t, T*);
PIXGRAD_INSTANTIATE(float)
PIXGRAD_INSTANTIATE(double)
#undef PIXGRAD_INSTANTIATE

}  // namespace pixgrad::kernels::cpu
