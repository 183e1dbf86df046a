#include <pixgrad/kernels/cpu/adam.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include <immintrin.h>
#include <omp.h>

namespace pixgrad::kernels::cpu {

namespace {
constexpr int64_t kParallelThreshold = 1 << 15;

// The AVX2 update of elements [begin, end): the portable loop's operations in
// the same order, with no fused multiply-adds, so the results are the same
// to the bit (sqrt and division are correctly rounded in both). Returns true
// if a gradient element was NaN or infinite. The plain loop compiled for the
// baseline ISA reached a third of the memory bandwidth; this reaches it.
__attribute__((target("avx2"))) bool adam_range_avx2(const AdamScalars<float>& c, float* param, const float* grad,
                                                     float* exp_avg, float* exp_avg_sq, int64_t begin, int64_t end) {
  const __m256 step_size = _mm256_set1_ps(c.step_size), v_scale = _mm256_set1_ps(c.v_scale);
  const __m256 beta1 = _mm256_set1_ps(c.beta1), beta2 = _mm256_set1_ps(c.beta2);
  const __m256 one_minus_beta1 = _mm256_set1_ps(c.one_minus_beta1);
  const __m256 one_minus_beta2 = _mm256_set1_ps(c.one_minus_beta2);
  const __m256 eps = _mm256_set1_ps(c.eps), decay = _mm256_set1_ps(c.decay);
  __m256 nonfinite = _mm256_setzero_ps();  // g - g: 0, or NaN for NaN and infinities
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 raw = _mm256_loadu_ps(grad + i), p = _mm256_loadu_ps(param + i);
    nonfinite = _mm256_or_ps(nonfinite, _mm256_sub_ps(raw, raw));
    const __m256 g = _mm256_add_ps(raw, _mm256_mul_ps(decay, p));
    const __m256 m = _mm256_add_ps(_mm256_mul_ps(beta1, _mm256_loadu_ps(exp_avg + i)), _mm256_mul_ps(one_minus_beta1, g));
    const __m256 v = _mm256_add_ps(_mm256_mul_ps(beta2, _mm256_loadu_ps(exp_avg_sq + i)),
                                   _mm256_mul_ps(_mm256_mul_ps(one_minus_beta2, g), g));
    _mm256_storeu_ps(exp_avg + i, m);
    _mm256_storeu_ps(exp_avg_sq + i, v);
    const __m256 denominator = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(v), v_scale), eps);
    _mm256_storeu_ps(param + i, _mm256_sub_ps(p, _mm256_div_ps(_mm256_mul_ps(step_size, m), denominator)));
  }
  bool bad = _mm256_movemask_ps(_mm256_cmp_ps(nonfinite, nonfinite, _CMP_UNORD_Q)) != 0;
  for (; i < end; ++i) {
    bad |= !(grad[i] - grad[i] == 0.0f);
    const float g = grad[i] + c.decay * param[i];
    const float m = c.beta1 * exp_avg[i] + c.one_minus_beta1 * g;
    const float v = c.beta2 * exp_avg_sq[i] + c.one_minus_beta2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    param[i] -= c.step_size * m / (std::sqrt(v) * c.v_scale + c.eps);
  }
  return bad;
}

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

}  // namespace

template <typename T>
void adam_update_portable(Host, const AdamScalars<T>& c, T* param, const T* grad, T* exp_avg, T* exp_avg_sq,
                          int64_t n, T* nonfinite_flag) {
  const T step_size = c.step_size, v_scale = c.v_scale, beta1 = c.beta1, beta2 = c.beta2;
  const T one_minus_beta1 = c.one_minus_beta1, one_minus_beta2 = c.one_minus_beta2, eps = c.eps, decay = c.decay;
  // g - g is 0 for a finite g and NaN for NaN or an infinity: a test that
  // vectorises with the update, so the check costs no extra pass.
  int nonfinite = 0;
#pragma omp parallel for simd reduction(| : nonfinite) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    nonfinite |= !(grad[i] - grad[i] == T(0));
    const T g = grad[i] + decay * param[i];
    const T m = beta1 * exp_avg[i] + one_minus_beta1 * g;
    const T v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    param[i] -= step_size * m / (std::sqrt(v) * v_scale + eps);
  }
  if (nonfinite != 0 && nonfinite_flag) nonfinite_flag[0] = T(1);
}

template <typename T>
void adam_update(Host host, const AdamScalars<T>& c, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n,
                 T* nonfinite_flag) {
  if constexpr (std::is_same_v<T, float>) {
    if (cpu_has_avx2()) {
      bool nonfinite = false;
      // Each thread one contiguous range, cut at whole cache lines.
#pragma omp parallel reduction(|| : nonfinite) if (n > kParallelThreshold)
      {
        const int64_t threads = omp_get_num_threads(), chunk = ((n + threads - 1) / threads + 15) / 16 * 16;
        const int64_t begin = std::min(n, chunk * omp_get_thread_num()), end = std::min(n, begin + chunk);
        nonfinite = adam_range_avx2(c, param, grad, exp_avg, exp_avg_sq, begin, end);
      }
      if (nonfinite && nonfinite_flag) nonfinite_flag[0] = 1.0f;
      return;
    }
  }
  adam_update_portable(host, c, param, grad, exp_avg, exp_avg_sq, n, nonfinite_flag);
}

template <typename T>
void adam_update_portable(Host host, const AdamStep& s, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n,
                          T* nonfinite) {
  adam_update_portable(host, adam_scalars<T>(s), param, grad, exp_avg, exp_avg_sq, n, nonfinite);
}

template <typename T>
void adam_update(Host host, const AdamStep& s, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n,
                 T* nonfinite) {
  adam_update(host, adam_scalars<T>(s), param, grad, exp_avg, exp_avg_sq, n, nonfinite);
}

#define PIXGRAD_ADAM_INSTANTIATE(T, Scalars)                                                                 \
  template void adam_update_portable<T>(Host, const Scalars&, T*, const T*, T*, T*, int64_t, T*);                   \
  template void adam_update<T>(Host, const Scalars&, T*, const T*, T*, T*, int64_t, T*);
PIXGRAD_ADAM_INSTANTIATE(float, AdamStep)
PIXGRAD_ADAM_INSTANTIATE(double, AdamStep)
PIXGRAD_ADAM_INSTANTIATE(float, AdamScalars<float>)
PIXGRAD_ADAM_INSTANTIATE(double, AdamScalars<double>)
#undef PIXGRAD_ADAM_INSTANTIATE

}  // namespace pixgrad::kernels::cpu
