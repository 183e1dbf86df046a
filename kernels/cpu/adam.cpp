#include <pixgrad/kernels/cpu/adam.h>

#include <cmath>

namespace pixgrad::kernels::cpu {

namespace {
constexpr int64_t kParallelThreshold = 1 << 15;
}

template <typename T>
void adam_update(Host, const AdamStep& s, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n,
                 T* nonfinite_flag) {
  const double t = static_cast<double>(s.step);
  const double correction1 = 1 - std::pow(s.beta1, t), correction2 = 1 - std::pow(s.beta2, t);
  // p -= step_size * m / (sqrt(v) * v_scale + eps), covering both placements.
  const bool chainer = s.placement == EpsilonPlacement::Chainer;
  const T step_size = static_cast<T>(chainer ? s.lr * std::sqrt(correction2) / correction1 : s.lr / correction1);
  const T v_scale = static_cast<T>(chainer ? 1.0 : 1.0 / std::sqrt(correction2));
  const T beta1 = static_cast<T>(s.beta1), beta2 = static_cast<T>(s.beta2);
  // 1 - beta in double, then rounded: 1 - float(0.999) would be 1.3e-5 off.
  const T one_minus_beta1 = static_cast<T>(1 - s.beta1), one_minus_beta2 = static_cast<T>(1 - s.beta2);
  const T eps = static_cast<T>(s.eps), decay = static_cast<T>(s.weight_decay);
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

template void adam_update<float>(Host, const AdamStep&, float*, const float*, float*, float*, int64_t, float*);
template void adam_update<double>(Host, const AdamStep&, double*, const double*, double*, double*, int64_t,
                                  double*);

}  // namespace pixgrad::kernels::cpu
