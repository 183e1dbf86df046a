// Elementwise CUDA kernels over contiguous float32 arrays: the device twins of
// kernels/cpu/elementwise.h, with the same signatures after the device tag
// and the same formulas (kernels/elementwise_ops.h). Pointers are device
// pointers; every launcher is asynchronous on the current device's stream
// (kernels/cuda/runtime.cuh).
#pragma once

#include <cstdint>

#include <pixgrad/kernels/device_tags.h>
#include <pixgrad/kernels/elementwise_ops.h>

namespace pixgrad::kernels::cuda {

// y = f(x); `parameter` is the op's parameter (LeakyRelu's negative slope).
void unary_forward(Gpu, UnaryOp op, const float* x, float* y, int64_t n, double parameter);
// grad_x = grad_y * f'(x). `operand` is y when unary_reads_output(op), else x.
void unary_backward(Gpu, UnaryOp op, const float* operand, const float* grad_y, float* grad_x, int64_t n,
                    double parameter);
// out = grad_grad_x * grad_y * f''(x) (see kernels/cpu/elementwise.h).
void unary_double_backward(Gpu, UnaryOp op, const float* operand, const float* grad_y, const float* grad_grad_x,
                           float* out, int64_t n, double parameter);

// out = a (op) b, elementwise.
void binary_forward(Gpu, BinaryOp op, const float* a, const float* b, float* out, int64_t n);
// out = a (op) float(scalar).
void scalar_forward(Gpu, BinaryOp op, const float* a, double scalar, float* out, int64_t n);

void fill(Gpu, float* out, int64_t n, double value);
// out[i] = float(scale * double(*scalar)); `scalar` is one float on the device.
void fill_from_scalar(Gpu, float* out, int64_t n, const float* scalar, double scale);
// destination += source
void accumulate(Gpu, float* destination, const float* source, int64_t n);
// x[n, c, s] += bias[c]   (x is [N, C, S])
void add_per_channel(Gpu, float* x, const float* bias, int64_t batch, int64_t channels, int64_t spatial);

}  // namespace pixgrad::kernels::cuda
