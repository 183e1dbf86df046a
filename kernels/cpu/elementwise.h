// Elementwise CPU kernels over contiguous arrays, for float and double: the
// reference for the CUDA kernels (kernels/cuda/elementwise.h, the same
// signatures after the device tag) and the no-GPU fallback. The unary
// formulas are in kernels/elementwise_ops.h, shared with the GPU.
#pragma once

#include <cstdint>

#include <pixgrad/kernels/device_tags.h>
#include <pixgrad/kernels/elementwise_ops.h>

namespace pixgrad::kernels::cpu {

// y = f(x); `parameter` is the op's parameter (LeakyRelu's negative slope).
template <typename T>
void unary_forward(Host, UnaryOp op, const T* x, T* y, int64_t n, double parameter);
// grad_x = grad_y * f'(x). `operand` is y when unary_reads_output(op), else x.
template <typename T>
void unary_backward(Host, UnaryOp op, const T* operand, const T* grad_y, T* grad_x, int64_t n, double parameter);
// out = grad_grad_x * grad_y * f''(x): the gradient with respect to x of
// unary_backward's output, when grad_grad_x flows into it.
template <typename T>
void unary_double_backward(Host, UnaryOp op, const T* operand, const T* grad_y, const T* grad_grad_x, T* out,
                           int64_t n, double parameter);

// out = a (op) b, elementwise.
template <typename T>
void binary_forward(Host, BinaryOp op, const T* a, const T* b, T* out, int64_t n);
// out = a (op) scalar.
template <typename T>
void scalar_forward(Host, BinaryOp op, const T* a, double scalar, T* out, int64_t n);

template <typename T>
void fill(Host, T* out, int64_t n, double value);
// out[i] = T(scale * double(*scalar)); `scalar` is one element in the same memory as out.
template <typename T>
void fill_from_scalar(Host, T* out, int64_t n, const T* scalar, double scale);
// destination += source
template <typename T>
void accumulate(Host, T* destination, const T* source, int64_t n);
// x[n, c, s] += bias[c]   (x is [N, C, S])
template <typename T>
void add_per_channel(Host, T* x, const T* bias, int64_t batch, int64_t channels, int64_t spatial);

}  // namespace pixgrad::kernels::cpu
