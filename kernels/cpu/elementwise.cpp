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

}  // namespace

template <typename T>
void unary_forward(Host, UnaryOp op, const T* x, T* y, int64_t n, double parameter) {
  const T p = static_cast<T>(parameter);
  visit_unary(op, [&](auto unary) {
    using Op = decltype(unary);
    map_values(n, x, y, [=](T v) { return Op::forward(v, p); });
  });
}

template <typename T>
void unary_backward(Host, UnaryOp op, const T* operand, const T* grad_y, T* grad_x, int64_t n, double parameter) {
  const T p = static_cast<T>(parameter);
  visit_unary(op, [&](auto unary) {
    using Op = decltype(unary);
    map_pairs(n, operand, grad_y, grad_x, [=](T v, T g) { return Op::backward(v, g, p); });
  });
}

template <typename T>
void unary_double_backward(Host, UnaryOp op, const T* operand, const T* grad_y, const T* grad_grad_x, T* out,
                           int64_t n, double parameter) {
  const T p = static_cast<T>(parameter);
  visit_unary(op, [&](auto unary) {
    using Op = decltype(unary);
    for_each_index(n, [=](int64_t i) { out[i] = Op::double_backward(operand[i], grad_y[i], grad_grad_x[i], p); });
  });
}

template <typename T>
void binary_forward(Host, BinaryOp op, const T* a, const T* b, T* out, int64_t n) {
  switch (op) {
    case BinaryOp::Add: for_each_index(n, [=](int64_t i) { out[i] = a[i] + b[i]; }); break;
    case BinaryOp::Sub: for_each_index(n, [=](int64_t i) { out[i] = a[i] - b[i]; }); break;
    case BinaryOp::Mul: for_each_index(n, [=](int64_t i) { out[i] = a[i] * b[i]; }); break;
    case BinaryOp::Div: for_each_index(n, [=](int64_t i) { out[i] = a[i] / b[i]; }); break;
  }
}

template <typename T>
void scalar_forward(Host, BinaryOp op, const T* a, double scalar, T* out, int64_t n) {
  const T s = static_cast<T>(scalar);
  switch (op) {
    case BinaryOp::Add: for_each_index(n, [=](int64_t i) { out[i] = a[i] + s; }); break;
    case BinaryOp::Sub: for_each_index(n, [=](int64_t i) { out[i] = a[i] - s; }); break;
    case BinaryOp::Mul: for_each_index(n, [=](int64_t i) { out[i] = a[i] * s; }); break;
    case BinaryOp::Div: for_each_index(n, [=](int64_t i) { out[i] = a[i] / s; }); break;
  }
}

template <typename T>
void fill(Host, T* out, int64_t n, double value) {
  const T v = static_cast<T>(value);
  for_each_index(n, [=](int64_t i) { out[i] = v; });
}

template <typename T>
void fill_from_scalar(Host host, T* out, int64_t n, const T* scalar, double scale) {
  fill(host, out, n, scale * static_cast<double>(scalar[0]));
}

template <typename T>
void accumulate(Host, T* destination, const T* source, int64_t n) {
  for_each_index(n, [=](int64_t i) { destination[i] += source[i]; });
}

template <typename T>
void add_per_channel(Host, T* x, const T* bias, int64_t batch, int64_t channels, int64_t spatial) {
#pragma omp parallel for collapse(2) if (batch * channels * spatial > kParallelThreshold)
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t c = 0; c < channels; ++c) {
      T* plane = x + (n * channels + c) * spatial;
      for (int64_t i = 0; i < spatial; ++i) plane[i] += bias[c];
    }
}

#define PIXGRAD_INSTANTIATE(T)                                                                      \
  template void unary_forward<T>(Host, UnaryOp, const T*, T*, int64_t, double);                    \
  template void unary_backward<T>(Host, UnaryOp, const T*, const T*, T*, int64_t, double);         \
  template void unary_double_backward<T>(Host, UnaryOp, const T*, const T*, const T*, T*, int64_t, double); \
  template void binary_forward<T>(Host, BinaryOp, const T*, const T*, T*, int64_t);                \
  template void scalar_forward<T>(Host, BinaryOp, const T*, double, T*, int64_t);                  \
  template void fill<T>(Host, T*, int64_t, double);                                                \
  template void fill_from_scalar<T>(Host, T*, int64_t, const T*, double);                          \
  template void accumulate<T>(Host, T*, const T*, int64_t);                                        \
  template void add_per_channel<T>(Host, T*, const T*, int64_t, int64_t, int64_t);
PIXGRAD_INSTANTIATE(float)
PIXGRAD_INSTANTIATE(double)
#undef PIXGRAD_INSTANTIATE

}  // namespace pixgrad::kernels::cpu
