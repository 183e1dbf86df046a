// Reductions on the host, accumulated in double so that summing millions of
// floats loses nothing visible at float precision, in a fixed order (the same
// result for any thread count). Results are written, like the CUDA twins'
// (kernels/cuda/reduce.h), to an element in the same memory as the inputs.
#pragma once

#include <cstdint>

#include <pixgrad/kernels/device_tags.h>

namespace pixgrad::kernels::cpu {

// out[0] = sum of x
template <typename T>
void sum(Host, const T* x, int64_t n, T* out);
// out[0] = scale * sum |a - b|
template <typename T>
void sum_abs_difference(Host, const T* a, const T* b, int64_t n, double scale, T* out);
// grad_a = T(double(grad_scalar[0]) * scale) * sign(a - b)   (0 where a == b)
template <typename T>
void sign_of_difference(Host, const T* a, const T* b, const T* grad_scalar, double scale, T* grad_a, int64_t n);
// out[c] = sum over n and s of x[n, c, s]   (x is [N, C, S])
template <typename T>
void sum_per_channel(Host, const T* x, int64_t batch, int64_t channels, int64_t spatial, T* out);

}  // namespace pixgrad::kernels::cpu
