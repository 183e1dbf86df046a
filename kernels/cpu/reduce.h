// Reductions to one number, accumulated in double so that summing millions of
// floats loses nothing visible at float precision.
#pragma once

#include <cstdint>

namespace pixgrad::kernels::cpu {

template <typename T>
double sum(const T* x, int64_t n);
// sum |a - b|
template <typename T>
double sum_abs_difference(const T* a, const T* b, int64_t n);
// grad_a = scale * sign(a - b)   (0 where a == b)
template <typename T>
void sign_of_difference(const T* a, const T* b, double scale, T* grad_a, int64_t n);

}  // namespace pixgrad::kernels::cpu

namespace pixgrad::kernels::cpu {

// out[c] = sum over n and s of x[n, c, s]   (x is [N, C, S])
template <typename T>
void sum_per_channel(const T* x, int64_t batch, int64_t channels, int64_t spatial, T* out);

}  // namespace pixgrad::kernels::cpu
