// Fused optimizer steps on CUDA, the device twins of kernels/cpu/adam.h and
// kernels/cpu/sgd.h: one pass over the parameter and its state.
#pragma once

#include <cstdint>
#include <vector>

#include <pixgrad/kernels/device_tags.h>
#include <pixgrad/kernels/multi_tensor_adam.h>
#include <pixgrad/kernels/optimizer_steps.h>

namespace pixgrad::kernels::cuda {

// `nonfinite` (device memory, may be null) is set to 1 if a gradient element
// is NaN or infinite, and left alone otherwise: one flag can collect a whole
// step's updates and be read back with the step's losses.
// `scalars_at` (device memory, may be null): the step's scalars, read when the
// kernel runs instead of being formed from `s` (a captured step's replays,
// core/replay_values.h).
void adam_update(Gpu, const AdamStep& s, float* param, const float* grad, float* exp_avg, float* exp_avg_sq,
                 int64_t n, float* nonfinite = nullptr, const AdamScalars<float>* scalars_at = nullptr);
// Every tensor's update in one launch (kernels/multi_tensor_adam.h) per 64
// tensors: the same bits as adam_update on each, without a launch per tensor.
void adam_update_many(Gpu, const AdamStep& s, const std::vector<AdamTensor>& tensors, float* nonfinite = nullptr,
                      const AdamScalars<float>* scalars_at = nullptr);
// momentum_buffer may be null when momentum is zero.
void sgd_update(Gpu, const SgdStep& s, float* param, const float* grad, float* momentum_buffer, int64_t n,
                float* nonfinite = nullptr);

}  // namespace pixgrad::kernels::cuda
