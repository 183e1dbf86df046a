#include "kernels/cpu/reduce.h"

#include <cmath>

namespace pixgrad::kernels::cpu {

namespace {
constexpr int64_t kParallelThreshold = 1 << 15;
}

template <typename T>
double sum(const T* x, int64_t n) {
  double total = 0;
#pragma omp parallel for simd reduction(+ : total) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) total += static_cast<double>(x[i]);
  return total;
}

template <typename T>
double sum_abs_difference(const T* a, const T* b, int64_t n) {
  double total = 0;
#pragma omp parallel for simd reduction(+ : total) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) total += std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
  return total;
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
