// SGD with optional momentum and L2 weight decay, as PyTorch's SGD (no
// dampening, no Nesterov), one fused pass per parameter tensor:
//   g = grad + weight_decay * p
//   buf = momentum * buf + g      (buf starts at zero, so the first step gives buf = g)
//   p -= lr * (momentum != 0 ? buf : g)
#pragma once

#include <cstdint>

namespace pixgrad::kernels::cpu {

struct SgdStep {
  double lr, momentum, weight_decay;
};

// momentum_buffer may be null when momentum is zero.
// Returns false if a gradient element was NaN or infinite (see adam_update).
template <typename T>
bool sgd_update(const SgdStep& s, T* param, const T* grad, T* momentum_buffer, int64_t n);

}  // namespace pixgrad::kernels::cpu
