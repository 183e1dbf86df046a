// Elementwise kernels: one pass, memory-bound. The op switch sits outside the
// loop so that each loop body is a small lambda the compiler vectorises;
// OpenMP only kicks in above a size where thread start-up is worth it.
#include <pixgrad/kernels/cpu/elementwise.h>

#include <algorithm>
#include <cmath>

namespace pixgrad::kernels::cpu {

namespace {

constexpr int64_t kParallelThreshold = 1 << 15;

template <typename Body>
void for_each_index(int64_t n, Body body) {
#pragma omp parallel for simd if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) body(i);
}

// y[i] = f(x[i]) over non-aliasing arrays: with __restrict and a value-to-value
// f, GCC turns selects into vector blends instead of branches.
template <typename T, typename F>
void map_values(int64_t n, const T* __restrict x, T* __restrict y, F f) {
#pragma omp parallel for simd if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

// out[i] = f(a[i], b[i]), likewise.
template <typename T, typename F>
void map_pairs(int64_t n, const T* __restrict a, const T* __restrict b, T* __restrict out, F f) {
#pragma omp parallel for simd if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
}

// log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large x, no
// loss of the tiny result for very negative x.
template <typename T>
T stable_softplus(T x) {
  return std::max(x, T(0)) + std::log1p(std::exp(-std::abs(x)));
}

template <typename T>
T stable_sigmoid(T x) {
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

}  // namespace

template <typename T>
void unary_forward(UnaryOp op, const T* x, T* y, int64_t n, double parameter) {
  const T slope = static_cast<T>(parameter);
  switch (op) {
    // Selects of existing values and unconditional arithmetic: GCC (with its
    // default -ftrapping-math) will not if-convert a select that guards a
    // multiply, and the branch it leaves mispredicts on random signs. Both
    // forms are exact (one of the two terms is zero) and keep a NaN a NaN, as
    // PyTorch does: a diverged value must not turn into a plausible zero.
    case UnaryOp::Relu: map_values(n, x, y, [](T v) { return v > 0 || v != v ? v : T(0); }); break;
    case UnaryOp::LeakyRelu:
      map_values(n, x, y, [=](T v) { return (v < 0 ? T(0) : v) + slope * (v < 0 ? v : T(0)); });
      break;
    case UnaryOp::Tanh: for_each_index(n, [=](int64_t i) { y[i] = std::tanh(x[i]); }); break;
    case UnaryOp::Sigmoid: for_each_index(n, [=](int64_t i) { y[i] = stable_sigmoid(x[i]); }); break;
    case UnaryOp::Softplus: for_each_index(n, [=](int64_t i) { y[i] = stable_softplus(x[i]); }); break;
    case UnaryOp::Abs: for_each_index(n, [=](int64_t i) { y[i] = std::abs(x[i]); }); break;
    case UnaryOp::Neg: for_each_index(n, [=](int64_t i) { y[i] = -x[i]; }); break;
  }
}

template <typename T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* grad_y, T* grad_x, int64_t n, double parameter) {
  const T slope = static_cast<T>(parameter);
  switch (op) {
    case UnaryOp::Relu: map_pairs(n, x, grad_y, grad_x, [](T v, T g) { return v > 0 ? g : T(0); }); break;
    case UnaryOp::LeakyRelu:
      map_pairs(n, x, grad_y, grad_x, [=](T v, T g) { return g * (v > 0 ? T(1) : slope); });
      break;
    case UnaryOp::Tanh:
      for_each_index(n, [=](int64_t i) { grad_x[i] = grad_y[i] * (T(1) - y[i] * y[i]); });
      break;
    case UnaryOp::Sigmoid:
      for_each_index(n, [=](int64_t i) { grad_x[i] = grad_y[i] * y[i] * (T(1) - y[i]); });
      break;
    case UnaryOp::Softplus:  // d/dx softplus(x) = sigmoid(x)
      for_each_index(n, [=](int64_t i) { grad_x[i] = grad_y[i] * stable_sigmoid(x[i]); });
      break;
    case UnaryOp::Abs:  // subgradient 0 at 0, as in PyTorch
      for_each_index(n, [=](int64_t i) { grad_x[i] = x[i] > 0 ? grad_y[i] : (x[i] < 0 ? -grad_y[i] : T(0)); });
      break;
    case UnaryOp::Neg: for_each_index(n, [=](int64_t i) { grad_x[i] = -grad_y[i]; }); break;
  }
}

template <typename T>
void binary_forward(BinaryOp op, const T* a, const T* b, T* out, int64_t n) {
  switch (op) {
    case BinaryOp::Add: for_each_index(n, [=](int64_t i) { out[i] = a[i] + b[i]; }); break;
    case BinaryOp::Sub: for_each_index(n, [=](int64_t i) { out[i] = a[i] - b[i]; }); break;
    case BinaryOp::Mul: for_each_index(n, [=](int64_t i) { out[i] = a[i] * b[i]; }); break;
    case BinaryOp::Div: for_each_index(n, [=](int64_t i) { out[i] = a[i] / b[i]; }); break;
  }
}

template <typename T>
void scalar_forward(BinaryOp op, const T* a, double scalar, T* out, int64_t n) {
  const T s = static_cast<T>(scalar);
  switch (op) {
    case BinaryOp::Add: for_each_index(n, [=](int64_t i) { out[i] = a[i] + s; }); break;
    case BinaryOp::Sub: for_each_index(n, [=](int64_t i) { out[i] = a[i] - s; }); break;
    case BinaryOp::Mul: for_each_index(n, [=](int64_t i) { out[i] = a[i] * s; }); break;
    case BinaryOp::Div: for_each_index(n, [=](int64_t i) { out[i] = a[i] / s; }); break;
  }
}

template <typename T>
void fill(T* out, int64_t n, double value) {
  const T v = static_cast<T>(value);
  for_each_index(n, [=](int64_t i) { out[i] = v; });
}

template <typename T>
void accumulate(T* destination, const T* source, int64_t n) {
  for_each_index(n, [=](int64_t i) { destination[i] += source[i]; });
}

#define PIXGRAD_INSTANTIATE(T)                                                              \
  template void unary_forward<T>(UnaryOp, const T*, T*, int64_t, double);                   \
  template void unary_backward<T>(UnaryOp, const T*, const T*, const T*, T*, int64_t, double); \
  template void binary_forward<T>(BinaryOp, const T*, const T*, T*, int64_t);               \
  template void scalar_forward<T>(BinaryOp, const T*, double, T*, int64_t);                 \
  template void fill<T>(T*, int64_t, double);                                               \
  template void accumulate<T>(T*, const T*, int64_t);
PIXGRAD_INSTANTIATE(float)
PIXGRAD_INSTANTIATE(double)
#undef PIXGRAD_INSTANTIATE

}  // namespace pixgrad::kernels::cpu

namespace pixgrad::kernels::cpu {

template <typename T>
void add_per_channel(T* x, const T* bias, int64_t batch, int64_t channels, int64_t spatial) {
#pragma omp parallel for collapse(2) if (batch * channels * spatial > (1 << 15))
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t c = 0; c < channels; ++c) {
      T* plane = x + (n * channels + c) * spatial;
      for (int64_t i = 0; i < spatial; ++i) plane[i] += bias[c];
    }
}

template void add_per_channel<float>(float*, const float*, int64_t, int64_t, int64_t);
template void add_per_channel<double>(double*, const double*, int64_t, int64_t, int64_t);

}  // namespace pixgrad::kernels::cpu
