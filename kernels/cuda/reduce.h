// CUDA reductions, the device twins of kernels/cpu/reduce.h. Results stay on
// the device (nothing waits for the GPU), and they are deterministic: the
// summation order depends only on the sizes, never on scheduling.
#pragma once

#include <cstdint>

#include <pixgrad/kernels/device_tags.h>

namespace pixgrad::kernels::cuda {

// *out = sum of x  (out: one float on the device)
void sum(Gpu, const float* x, int64_t n, float* out);
// *out = float(float(sum |a - b|) * float(scale))
void sum_abs_difference(Gpu, const float* a, const float* b, int64_t n, double scale, float* out);
// grad_a = float(double(*grad_scalar) * scale) * sign(a - b)   (0 where a == b; grad_scalar on the device)
void sign_of_difference(Gpu, const float* a, const float* b, const float* grad_scalar, double scale, float* grad_a,
                        int64_t n);
// out[c] = sum over n and s of x[n, c, s]   (x is [N, C, S])
void sum_per_channel(Gpu, const float* x, int64_t batch, int64_t channels, int64_t spatial, float* out);

}  // namespace pixgrad::kernels::cuda
