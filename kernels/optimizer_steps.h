// One optimiser update's scalars, as both devices' fused update kernels take them.
#pragma once

#include <cmath>
#include <cstdint>

namespace pixgrad::kernels {

// Where Adam's eps sits relative to the bias correction (kernels/cpu/adam.h).
enum class EpsilonPlacement { PyTorch, Chainer };

struct AdamStep {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // t, counted from 1
  EpsilonPlacement placement;
};

// The element update's scalars in T: the CPU loops (kernels/cpu/adam.cpp) and
// the CUDA kernels (kernels/multi_tensor_adam.h) take the same values, so a
// step gives the same bits on both devices.
template <typename T>
struct AdamScalars {
  T step_size, v_scale, beta1, beta2, one_minus_beta1, one_minus_beta2, eps, decay;
};

// Host only: one step's scalars, formed in double and rounded to T once.
// p -= step_size * m / (sqrt(v) * v_scale + eps) covers both placements.
template <typename T>
AdamScalars<T> adam_scalars(const AdamStep& s) {
  const double t = static_cast<double>(s.step);
  const double correction1 = 1 - std::pow(s.beta1, t), correction2 = 1 - std::pow(s.beta2, t);
  const bool chainer = s.placement == EpsilonPlacement::Chainer;
  AdamScalars<T> c;
  c.step_size = static_cast<T>(chainer ? s.lr * std::sqrt(correction2) / correction1 : s.lr / correction1);
  c.v_scale = static_cast<T>(chainer ? 1.0 : 1.0 / std::sqrt(correction2));
  c.beta1 = static_cast<T>(s.beta1);
  c.beta2 = static_cast<T>(s.beta2);
  // 1 - beta in double, then rounded: 1 - float(0.999) would be 1.3e-5 off.
  c.one_minus_beta1 = static_cast<T>(1 - s.beta1);
  c.one_minus_beta2 = static_cast<T>(1 - s.beta2);
  c.eps = static_cast<T>(s.eps);
  c.decay = static_cast<T>(s.weight_decay);
  return c;
}

struct SgdStep {
  double lr, momentum, weight_decay;
};

}  // namespace pixgrad::kernels
