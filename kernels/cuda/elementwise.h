// Elementwise CUDA kernels over contiguous float32 arrays: the device twins of
// kernels/cpu/elementwise.h, with the same ops and the same formulas.
// Pointers are device pointers; every launcher is asynchronous on the current
// device's stream (kernels/cuda/runtime.cuh).
#pragma once

#include <cstdint>

#include <pixgrad/kernels/cpu/elementwise.h>

namespace pixgrad::kernels::cuda {

// y = f(x); `parameter` is the negative slope of LeakyRelu.
void unary_forward(cpu::UnaryOp op, const float* x, float* y, int64_t n, double parameter);
// grad_x = grad_y * f'(x). Tanh and Sigmoid read y (x may be null); the others read x (y may be null).
void unary_backward(cpu::UnaryOp op, const float* x, const float* y, const float* grad_y, float* grad_x, int64_t n,
                    double parameter);

// out = a (op) b, elementwise.
void binary_forward(cpu::BinaryOp op, const float* a, const float* b, float* out, int64_t n);
// out = a (op) float(scalar).
void scalar_forward(cpu::BinaryOp op, const float* a, double scalar, float* out, int64_t n);

void fill(float* out, int64_t n, double value);
// destination += source
void accumulate(float* destination, const float* source, int64_t n);
// x[n, c, s] += bias[c]   (x is [N, C, S])
void add_per_channel(float* x, const float* bias, int64_t batch, int64_t channels, int64_t spatial);
// out[i] = float(scale * double(*scalar)); `scalar` is one float on the device.
void fill_from_scalar(float* out, int64_t n, const float* scalar, double scale);

}  // namespace pixgrad::kernels::cuda
