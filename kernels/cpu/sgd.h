// SGD with optional momentum and L2 weight decay, as PyTorch's SGD (no
// dampening, no Nesterov), one fused pass per parameter tensor:
//   g = grad + weight_decay * p
//   buf = momentum * buf + g      (buf starts at zero, so the first step gives buf = g)
//   p -= lr * (momentum != 0 ? buf : g)
#pragma once

#include <cstdint>

#include <pixgrad/kernels/device_tags.h>
#include <pixgrad/kernels/optimizer_steps.h>

namespace pixgrad::kernels::cpu {

// momentum_buffer may be null when momentum is zero; nonfinite as in adam_update.
template <typename T>
void sgd_update(Host, const SgdStep& s, T* param, const T* grad, T* momentum_buffer, int64_t n, T* nonfinite);

}  // namespace pixgrad::kernels::cpu
