// Elementwise CPU kernels over contiguous arrays, for float and double.
// These are the reference for the CUDA kernels and the no-GPU fallback.
#pragma once

#include <cstdint>

namespace pixgrad::kernels::cpu {

enum class UnaryOp { Relu, LeakyRelu, Tanh, Sigmoid, Softplus, Abs, Neg };
enum class BinaryOp { Add, Sub, Mul, Div };

// y = f(x); `parameter` is the negative slope of LeakyRelu.
template <typename T>
void unary_forward(UnaryOp op, const T* x, T* y, int64_t n, double parameter = 0);
// grad_x = grad_y * f'(x). Tanh and Sigmoid read the forward output y; the others read x.
template <typename T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* grad_y, T* grad_x, int64_t n,
                    double parameter = 0);

// out = a (op) b, elementwise.
template <typename T>
void binary_forward(BinaryOp op, const T* a, const T* b, T* out, int64_t n);
// out = a (op) scalar.
template <typename T>
void scalar_forward(BinaryOp op, const T* a, double scalar, T* out, int64_t n);

template <typename T>
void fill(T* out, int64_t n, double value);
// destination += source
template <typename T>
void accumulate(T* destination, const T* source, int64_t n);

}  // namespace pixgrad::kernels::cpu

namespace pixgrad::kernels::cpu {

// x[n, c, s] += bias[c]   (x is [N, C, S])
template <typename T>
void add_per_channel(T* x, const T* bias, int64_t batch, int64_t channels, int64_t spatial);

}  // namespace pixgrad::kernels::cpu
