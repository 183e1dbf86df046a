// One optimiser update's scalars, as both devices' fused update kernels take them.
#pragma once

#include <cstdint>

namespace pixgrad::kernels {

// Where Adam's eps sits relative to the bias correction (kernels/cpu/adam.h).
enum class EpsilonPlacement { PyTorch, Chainer };

struct AdamStep {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // t, counted from 1
  EpsilonPlacement placement;
};

struct SgdStep {
  double lr, momentum, weight_decay;
};

}  // namespace pixgrad::kernels
