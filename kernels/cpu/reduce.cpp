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
double sum(const T* x, int64_t n) {
  return deterministic_sum(n, [=](int64_t i) { return static_cast<double>(x[i]); });
}

template <typename T>
double sum_abs_difference(const T* a, const T* b, int64_t n) {
  return deterministic_sum(n, [=](int64_t i) { return std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])); });
}

template <typename T>
void sign_of_difference(const T* a, const T* b, double scale, T* grad_a, int64_t n) {
  const T s = static_cast<T>(scale);
#pragma omp parallel for simd if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) grad_a[i] = a[i] > b[i] ? s : (a[i] < b[i] ? -s : T(0));
}

template double sum<float>(const float*, int64_t);
template double sum<double>(const double*, int64_t);
template double sum_abs_difference<float>(const float*, const float*, int64_t);
template double sum_abs_difference<double>(const double*, const double*, int64_t);
template void sign_of_difference<float>(const float*, const float*, double, float*, int64_t);
template void sign_of_difference<double>(const double*, const double*, double, double*, int64_t);

}  // namespace pixgrad::kernels::cpu

namespace pixgrad::kernels::cpu {

template <typename T>
void sum_per_channel(const T* x, int64_t batch, int64_t channels, int64_t spatial, T* out) {
#pragma omp parallel for if (batch * channels * spatial > (1 << 15))
  for (int64_t c = 0; c < channels; ++c) {
    double total = 0;
    for (int64_t n = 0; n < batch; ++n) {
      const T* plane = x + (n * channels + c) * spatial;
      for (int64_t i = 0; i < spatial; ++i) total += plane[i];
    }
    out[c] = static_cast<T>(total);
  }
}

template void sum_per_channel<float>(const float*, int64_t, int64_t, int64_t, float*);
template void sum_per_channel<double>(const double*, int64_t, int64_t, int64_t, double*);

}  // namespace pixgrad::kernels::cpu
