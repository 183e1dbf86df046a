// The elementwise ops of both devices, each formula written once.
//
// kernels/cpu/elementwise.cpp and kernels/cuda/elementwise.cu instantiate the
// same functions, so the CPU reference and the CUDA kernels cannot drift
// apart. A unary op is a struct with three formulas:
//
//   forward(x)                   y = f(x)
//   backward(v, dy)              dy * f'(x)
//   double_backward(v, dy, ddx)  ddx * dy * f''(x): the gradient, with respect
//                                to x, of backward's output when ddx flows
//                                into it (for gradients of gradients)
//
// where v is x, or y when kReadsOutput (tanh and sigmoid's derivatives are
// cheapest in y). `p` is the op's parameter (LeakyRelu's negative slope).
//
// Adding a unary op: a struct here, its enum value and its case in
// visit_unary; then its declaration in core/ops.h and its one-line
// definition in core/ops/activation.cpp (docs/core.md).
//
// Exactness: products that feed a sum go through mul_exact / sub_exact, which
// on the GPU keep nvcc from contracting them into an FMA, so ops built from
// + - * / give the CPU's bits (the CPU build targets baseline x86-64, no FMA).
// div_exact and sqrt_exact stay IEEE-rounded on the GPU under --use_fast_math
// too, which approximates / and sqrtf (its -ftz still flushes subnormals).
// exp, tanh and log1p may differ between glibc and CUDA in the last bit.
// Selects are written so that a NaN input stays NaN, as in PyTorch: a
// diverged value must not turn into a plausible zero.
#pragma once

#include <cmath>

#ifdef __CUDACC__
#define PIXGRAD_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define PIXGRAD_HOST_DEVICE inline
#endif

namespace pixgrad::kernels {

// *address, through the read-only data cache on the device (for kernels'
// inputs that no thread of the launch writes).
template <typename T>
PIXGRAD_HOST_DEVICE T read_only(const T* address) {
#ifdef __CUDA_ARCH__
  return __ldg(address);
#else
  return *address;
#endif
}

enum class UnaryOp { Relu, LeakyRelu, Tanh, Sigmoid, Softplus, Abs, Neg, Square, Sqrt };
enum class BinaryOp { Add, Sub, Mul, Div };

// ---- the math both devices use ---------------------------------------------

namespace math {

#ifdef __CUDA_ARCH__
PIXGRAD_HOST_DEVICE float exp(float x) { return ::expf(x); }
PIXGRAD_HOST_DEVICE double exp(double x) { return ::exp(x); }
PIXGRAD_HOST_DEVICE float tanh(float x) { return ::tanhf(x); }
PIXGRAD_HOST_DEVICE double tanh(double x) { return ::tanh(x); }
PIXGRAD_HOST_DEVICE float log1p(float x) { return ::log1pf(x); }
PIXGRAD_HOST_DEVICE double log1p(double x) { return ::log1p(x); }
PIXGRAD_HOST_DEVICE float sqrt(float x) { return ::sqrtf(x); }
PIXGRAD_HOST_DEVICE double sqrt(double x) { return ::sqrt(x); }
PIXGRAD_HOST_DEVICE float abs(float x) { return ::fabsf(x); }
PIXGRAD_HOST_DEVICE double abs(double x) { return ::fabs(x); }
PIXGRAD_HOST_DEVICE float mul_exact(float a, float b) { return __fmul_rn(a, b); }
PIXGRAD_HOST_DEVICE double mul_exact(double a, double b) { return __dmul_rn(a, b); }
PIXGRAD_HOST_DEVICE float sub_exact(float a, float b) { return __fsub_rn(a, b); }
PIXGRAD_HOST_DEVICE double sub_exact(double a, double b) { return __dsub_rn(a, b); }
PIXGRAD_HOST_DEVICE float div_exact(float a, float b) { return __fdiv_rn(a, b); }
PIXGRAD_HOST_DEVICE double div_exact(double a, double b) { return __ddiv_rn(a, b); }
PIXGRAD_HOST_DEVICE float sqrt_exact(float x) { return __fsqrt_rn(x); }
PIXGRAD_HOST_DEVICE double sqrt_exact(double x) { return __dsqrt_rn(x); }
#else
template <typename T> PIXGRAD_HOST_DEVICE T exp(T x) { return std::exp(x); }
template <typename T> PIXGRAD_HOST_DEVICE T tanh(T x) { return std::tanh(x); }
template <typename T> PIXGRAD_HOST_DEVICE T log1p(T x) { return std::log1p(x); }
template <typename T> PIXGRAD_HOST_DEVICE T sqrt(T x) { return std::sqrt(x); }
template <typename T> PIXGRAD_HOST_DEVICE T abs(T x) { return std::abs(x); }
template <typename T> PIXGRAD_HOST_DEVICE T mul_exact(T a, T b) { return a * b; }
template <typename T> PIXGRAD_HOST_DEVICE T sub_exact(T a, T b) { return a - b; }
template <typename T> PIXGRAD_HOST_DEVICE T div_exact(T a, T b) { return a / b; }
template <typename T> PIXGRAD_HOST_DEVICE T sqrt_exact(T x) { return std::sqrt(x); }
#endif

// log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large x, no loss
// of the tiny result for very negative x. `x < 0 ? 0 : x` keeps a NaN.
template <typename T>
PIXGRAD_HOST_DEVICE T softplus(T x) {
  return (x < T(0) ? T(0) : x) + log1p(exp(-abs(x)));
}

template <typename T>
PIXGRAD_HOST_DEVICE T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  const T e = exp(x);
  return e / (T(1) + e);
}

}  // namespace math

// ---- unary ops ---------------------------------------------------------------

struct Relu {
  static constexpr const char* kName = "relu";
  static constexpr bool kReadsOutput = false;
  template <typename T>
  PIXGRAD_HOST_DEVICE static T forward(T x, T) { return x > T(0) || x != x ? x : T(0); }
  template <typename T>
  PIXGRAD_HOST_DEVICE static T backward(T x, T dy, T) { return x > T(0) ? dy : T(0); }
  template <typename T>
  PIXGRAD_HOST_DEVICE static T double_backward(T, T, T, T) { return T(0); }
};

struct LeakyRelu {
  static constexpr const char* kName = "leaky_relu";
  static constexpr bool kReadsOutput = false;
  // Selects of existing values and unconditional arithmetic: GCC (with its
  // default -ftrapping-math) will not if-convert a select that guards a
  // multiply, and the branch it leaves mispredicts on random signs. Exact:
  // one of the two terms is zero.
  template <typename T>
  PIXGRAD_HOST_DEVICE static T forward(T x, T slope) { return (x < T(0) ? T(0) : x) + slope * (x < T(0) ? x : T(0)); }
  // Written like forward, for the same reason: dy * (x > 0 ? 1 : slope)
  // becomes a branch around a multiply. Exact but for the sign of a zero.
  template <typename T>
  PIXGRAD_HOST_DEVICE static T backward(T x, T dy, T slope) {
    return (x > T(0) ? dy : T(0)) + slope * (x > T(0) ? T(0) : dy);
  }
  template <typename T>
  PIXGRAD_HOST_DEVICE static T double_backward(T, T, T, T) { return T(0); }
};

struct Tanh {
  static constexpr const char* kName = "tanh";
  static constexpr bool kReadsOutput = true;
  template <typename T>
  PIXGRAD_HOST_DEVICE static T forward(T x, T) { return math::tanh(x); }
  // f' = 1 - y^2
  template <typename T>
  PIXGRAD_HOST_DEVICE static T backward(T y, T dy, T) { return math::mul_exact(dy, math::sub_exact(T(1), math::mul_exact(y, y))); }
  // f'' = -2 y (1 - y^2)
  template <typename T>
  PIXGRAD_HOST_DEVICE static T double_backward(T y, T dy, T ddx, T) {
    return ddx * dy * (T(-2) * y * math::sub_exact(T(1), math::mul_exact(y, y)));
  }
};

struct Sigmoid {
  static constexpr const char* kName = "sigmoid";
  static constexpr bool kReadsOutput = true;
  template <typename T>
  PIXGRAD_HOST_DEVICE static T forward(T x, T) { return math::sigmoid(x); }
  // f' = y (1 - y)
  template <typename T>
  PIXGRAD_HOST_DEVICE static T backward(T y, T dy, T) { return dy * y * (T(1) - y); }
  // f'' = y (1 - y) (1 - 2y)
  template <typename T>
  PIXGRAD_HOST_DEVICE static T double_backward(T y, T dy, T ddx, T) {
    return ddx * dy * (y * (T(1) - y) * math::sub_exact(T(1), math::mul_exact(T(2), y)));
  }
};

struct Softplus {
  static constexpr const char* kName = "softplus";
  static constexpr bool kReadsOutput = false;
  template <typename T>
  PIXGRAD_HOST_DEVICE static T forward(T x, T) { return math::softplus(x); }
  // f' = sigmoid(x)
  template <typename T>
  PIXGRAD_HOST_DEVICE static T backward(T x, T dy, T) { return dy * math::sigmoid(x); }
  // f'' = s (1 - s), s = sigmoid(x)
  template <typename T>
  PIXGRAD_HOST_DEVICE static T double_backward(T x, T dy, T ddx, T) {
    const T s = math::sigmoid(x);
    return ddx * dy * (s * (T(1) - s));
  }
};

struct Abs {
  static constexpr const char* kName = "abs";
  static constexpr bool kReadsOutput = false;
  template <typename T>
  PIXGRAD_HOST_DEVICE static T forward(T x, T) { return math::abs(x); }
  // Subgradient 0 at 0, as in PyTorch.
  template <typename T>
  PIXGRAD_HOST_DEVICE static T backward(T x, T dy, T) { return x > T(0) ? dy : (x < T(0) ? -dy : T(0)); }
  template <typename T>
  PIXGRAD_HOST_DEVICE static T double_backward(T, T, T, T) { return T(0); }
};

struct Neg {
  static constexpr const char* kName = "neg";
  static constexpr bool kReadsOutput = false;
  template <typename T>
  PIXGRAD_HOST_DEVICE static T forward(T x, T) { return -x; }
  template <typename T>
  PIXGRAD_HOST_DEVICE static T backward(T, T dy, T) { return -dy; }
  template <typename T>
  PIXGRAD_HOST_DEVICE static T double_backward(T, T, T, T) { return T(0); }
};

struct Square {
  static constexpr const char* kName = "square";
  static constexpr bool kReadsOutput = false;
  template <typename T>
  PIXGRAD_HOST_DEVICE static T forward(T x, T) { return x * x; }
  template <typename T>
  PIXGRAD_HOST_DEVICE static T backward(T x, T dy, T) { return dy * (x + x); }
  template <typename T>
  PIXGRAD_HOST_DEVICE static T double_backward(T, T dy, T ddx, T) { return ddx * dy * T(2); }
};

struct Sqrt {
  static constexpr const char* kName = "sqrt";
  static constexpr bool kReadsOutput = true;
  template <typename T>
  PIXGRAD_HOST_DEVICE static T forward(T x, T) { return math::sqrt(x); }
  // f' = 1 / (2y): infinite at 0, as in PyTorch.
  template <typename T>
  PIXGRAD_HOST_DEVICE static T backward(T y, T dy, T) { return dy / (y + y); }
  // f'' = -1 / (4 y^3)
  template <typename T>
  PIXGRAD_HOST_DEVICE static T double_backward(T y, T dy, T ddx, T) { return ddx * dy * (T(-0.25) / (y * y * y)); }
};

// Calls visit(Op{}) with the struct of `op`; host code (the kernel launchers).
template <typename Visit>
decltype(auto) visit_unary(UnaryOp op, Visit&& visit) {
  switch (op) {
    case UnaryOp::Relu: return visit(Relu{});
    case UnaryOp::LeakyRelu: return visit(LeakyRelu{});
    case UnaryOp::Tanh: return visit(Tanh{});
    case UnaryOp::Sigmoid: return visit(Sigmoid{});
    case UnaryOp::Softplus: return visit(Softplus{});
    case UnaryOp::Abs: return visit(Abs{});
    case UnaryOp::Neg: return visit(Neg{});
    case UnaryOp::Square: return visit(Square{});
    case UnaryOp::Sqrt: return visit(Sqrt{});
  }
  return visit(Neg{});  // unreachable: every enumerator has its case
}

// The op's name, as errors and the autograd graph spell it.
inline const char* unary_name(UnaryOp op) {
  return visit_unary(op, [](auto unary) { return decltype(unary)::kName; });
}

// Whether op's derivatives read the output y (else the input x).
inline bool unary_reads_output(UnaryOp op) {
  return visit_unary(op, [](auto unary) { return decltype(unary)::kReadsOutput; });
}

}  // namespace pixgrad::kernels
