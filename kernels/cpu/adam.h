// Adam, one fused pass per parameter tensor. With g = grad + weight_decay * p
// (L2 decay added to the gradient, as in PyTorch's Adam and Chainer's
// WeightDecay hook) and t the 1-based step:
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g^2
//   PyTorch: p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//   Chainer: p -= lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)
// The two differ only in where eps sits relative to the bias correction,
// which matters while v is tiny (early steps, rarely-updated weights).
// The step-dependent scalars are formed once in double; the elementwise
// work is memory-bound, so one read of p, g, m, v and one write of p, m, v.
#pragma once

#include <cstdint>

#include <pixgrad/kernels/device_tags.h>
#include <pixgrad/kernels/optimizer_steps.h>

namespace pixgrad::kernels::cpu {

// nonfinite (may be null) is set to 1 if a gradient element is NaN or
// infinite and left alone otherwise, as on the GPU (kernels/cuda/optim.h);
// the update is made all the same: the caller decides what a diverged step means.
template <typename T>
void adam_update(Host, const AdamStep& s, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n,
                 T* nonfinite);
// The same with the step's scalars formed already (adam_scalars), as a
// captured step reads them at each replay (core/replay_values.h).
template <typename T>
void adam_update(Host, const AdamScalars<T>& s, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n,
                 T* nonfinite);

// The plain loop, compiled for the baseline instruction set. adam_update
// runs AVX2 code instead for float on CPUs that have it, with the same
// operations in the same order (the same bits); tests compare the two.
template <typename T>
void adam_update_portable(Host, const AdamStep& s, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n,
                          T* nonfinite);
template <typename T>
void adam_update_portable(Host, const AdamScalars<T>& s, T* param, const T* grad, T* exp_avg, T* exp_avg_sq,
                          int64_t n, T* nonfinite);

}  // namespace pixgrad::kernels::cpu
