// Elementwise CUDA kernels: out[i] = op(in_0[i], in_1[i], ...), one pass, memory-bound.
//
// Memory: one generic grid-stride kernel, map_kernel<W>, applies an op functor
// to packs of W consecutive elements. When every pointer of a call is 16-byte
// aligned (the allocator's blocks are; offset views need not be), W = 4 and
// each thread moves float4s (128-bit loads and stores), and the n % 4 tail
// elements go to the first threads of the grid; otherwise W = 1. In-place calls
// (out == an input) are fine: each pack is read and then written by one thread.
// add_per_channel walks planes (n, c) with grid.y and a plane's elements with
// grid.x, so the channel is one modulo per plane, not a division per element.
//
// Math: the formulas of kernels/cpu/elementwise.cpp, including its stable
// sigmoid and softplus. Where a product feeds a sum, __fmul_rn / __fadd_rn keep
// nvcc from contracting the two into an FMA, so the ops built from + - * / give
// the same bits as the CPU reference (built for baseline x86-64: no FMA).
// tanhf, expf and log1pf may differ from glibc's in the last bit or two.
#include <pixgrad/kernels/cuda/elementwise.h>

#include <pixgrad/kernels/cuda/device_helpers.cuh>
#include <pixgrad/kernels/cuda/runtime.cuh>

namespace pixgrad::kernels::cuda {

namespace {

using cpu::BinaryOp;
using cpu::UnaryOp;

constexpr int kThreads = 256;


template <int W, typename Op, typename... Packs>
__device__ __forceinline__ Pack<W> apply(const Op& op, const Packs&... packs) {
  Pack<W> result;
#pragma unroll
  for (int k = 0; k < W; ++k) result.v[k] = op(packs.v[k]...);
  return result;
}

template <int W, typename Op, typename... Inputs>
__global__ void map_kernel(Op op, int64_t n, float* out, Inputs... inputs) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t packs = n / W;
  for (int64_t p = first; p < packs; p += stride) {
    const int64_t base = p * W;
    store<W>(out + base, apply<W>(op, load<W>(inputs + base)...));
  }
  if constexpr (W > 1) {
    const int64_t tail = packs * W + first;  // fewer than W elements, one per thread
    if (tail < n) out[tail] = op(inputs[tail]...);
  }
}

bool aligned16(const void* pointer) { return reinterpret_cast<uintptr_t>(pointer) % 16 == 0; }

// out[i] = op(inputs[i]...) for i < n.
template <typename Op, typename... Inputs>
void launch_map(Op op, int64_t n, float* out, Inputs... inputs) {
  if (n <= 0) return;
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  if (aligned16(out) && (aligned16(inputs) && ...)) {
    map_kernel<4><<<::pixgrad::cuda::blocks_for((n + 3) / 4, kThreads), kThreads, 0, stream>>>(op, n, out,
                                                                                               inputs...);
  } else {
    map_kernel<1><<<::pixgrad::cuda::blocks_for(n, kThreads), kThreads, 0, stream>>>(op, n, out, inputs...);
  }
  PIXGRAD_CUDA_CHECK_LAUNCH();
}

// ---- the ops ----------------------------------------------------------------

// log(1 + e^x) = max(x, 0) + log1p(e^-|x|). `x < 0 ? 0 : x` is std::max(x, 0)
// exactly, NaN and -0 included.
__device__ __forceinline__ float stable_softplus(float x) { return (x < 0.0f ? 0.0f : x) + log1pf(expf(-fabsf(x))); }

__device__ __forceinline__ float stable_sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  const float e = expf(x);
  return e / (1.0f + e);
}

struct Relu {  // NaN stays NaN, as on the CPU
  __device__ float operator()(float x) const { return x > 0.0f || x != x ? x : 0.0f; }
};
struct LeakyRelu {
  float slope;
  __device__ float operator()(float x) const { return x > 0.0f ? x : slope * x; }
};
struct Tanh {
  __device__ float operator()(float x) const { return tanhf(x); }
};
struct Sigmoid {
  __device__ float operator()(float x) const { return stable_sigmoid(x); }
};
struct Softplus {
  __device__ float operator()(float x) const { return stable_softplus(x); }
};
struct Abs {
  __device__ float operator()(float x) const { return fabsf(x); }
};
struct Neg {
  __device__ float operator()(float x) const { return -x; }
};

// Backward functors take (x or y, grad_y), whichever the derivative reads.
struct ReluBackward {
  __device__ float operator()(float x, float dy) const { return x > 0.0f ? dy : 0.0f; }
};
struct LeakyReluBackward {
  float slope;
  __device__ float operator()(float x, float dy) const { return x > 0.0f ? dy : slope * dy; }
};
struct TanhBackward {  // dy * (1 - y^2)
  __device__ float operator()(float y, float dy) const { return __fmul_rn(dy, __fsub_rn(1.0f, __fmul_rn(y, y))); }
};
struct SigmoidBackward {  // dy * y * (1 - y)
  __device__ float operator()(float y, float dy) const { return dy * y * (1.0f - y); }
};
struct SoftplusBackward {  // d/dx softplus(x) = sigmoid(x)
  __device__ float operator()(float x, float dy) const { return dy * stable_sigmoid(x); }
};
struct AbsBackward {  // subgradient 0 at 0, as on the CPU
  __device__ float operator()(float x, float dy) const { return x > 0.0f ? dy : (x < 0.0f ? -dy : 0.0f); }
};
struct NegBackward {
  __device__ float operator()(float dy) const { return -dy; }
};

struct Add {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct Sub {
  __device__ float operator()(float a, float b) const { return a - b; }
};
struct Mul {
  __device__ float operator()(float a, float b) const { return a * b; }
};
struct Div {
  __device__ float operator()(float a, float b) const { return a / b; }
};

template <typename Binary>
struct WithScalar {
  Binary op;
  float scalar;
  __device__ float operator()(float a) const { return op(a, scalar); }
};

struct Constant {
  float value;
  __device__ float operator()() const { return value; }
};

struct ScaledScalar {
  const float* scalar;
  double scale;
  __device__ float operator()() const { return static_cast<float>(scale * static_cast<double>(*scalar)); }
};

template <typename Visit>
void with_binary_op(BinaryOp op, Visit visit) {
  switch (op) {
    case BinaryOp::Add: visit(Add{}); return;
    case BinaryOp::Sub: visit(Sub{}); return;
    case BinaryOp::Mul: visit(Mul{}); return;
    case BinaryOp::Div: visit(Div{}); return;
  }
  fail("cuda binary op: unknown op ", static_cast<int>(op));
}

// ---- add_per_channel ----------------------------------------------------------

// grid.y walks the planes (n, c) of [N, C, S]; grid.x strides over one plane's packs.
template <int W>
__global__ void add_per_channel_kernel(float* x, const float* bias, int64_t planes, int64_t channels,
                                       int64_t plane_packs) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t plane = blockIdx.y; plane < planes; plane += gridDim.y) {
    const float b = bias[plane % channels];
    float* base = x + plane * plane_packs * W;
    for (int64_t p = first; p < plane_packs; p += stride) {
      Pack<W> v = load<W>(base + p * W);
#pragma unroll
      for (int k = 0; k < W; ++k) v.v[k] += b;
      store<W>(base + p * W, v);
    }
  }
}

}  // namespace

void unary_forward(UnaryOp op, const float* x, float* y, int64_t n, double parameter) {
  const float slope = static_cast<float>(parameter);
  switch (op) {
    case UnaryOp::Relu: launch_map(Relu{}, n, y, x); return;
    case UnaryOp::LeakyRelu: launch_map(LeakyRelu{slope}, n, y, x); return;
    case UnaryOp::Tanh: launch_map(Tanh{}, n, y, x); return;
    case UnaryOp::Sigmoid: launch_map(Sigmoid{}, n, y, x); return;
    case UnaryOp::Softplus: launch_map(Softplus{}, n, y, x); return;
    case UnaryOp::Abs: launch_map(Abs{}, n, y, x); return;
    case UnaryOp::Neg: launch_map(Neg{}, n, y, x); return;
  }
  fail("cuda unary_forward: unknown op ", static_cast<int>(op));
}

void unary_backward(UnaryOp op, const float* x, const float* y, const float* grad_y, float* grad_x, int64_t n,
                    double parameter) {
  const float slope = static_cast<float>(parameter);
  switch (op) {
    case UnaryOp::Relu: launch_map(ReluBackward{}, n, grad_x, x, grad_y); return;
    case UnaryOp::LeakyRelu: launch_map(LeakyReluBackward{slope}, n, grad_x, x, grad_y); return;
    case UnaryOp::Tanh: launch_map(TanhBackward{}, n, grad_x, y, grad_y); return;
    case UnaryOp::Sigmoid: launch_map(SigmoidBackward{}, n, grad_x, y, grad_y); return;
    case UnaryOp::Softplus: launch_map(SoftplusBackward{}, n, grad_x, x, grad_y); return;
    case UnaryOp::Abs: launch_map(AbsBackward{}, n, grad_x, x, grad_y); return;
    case UnaryOp::Neg: launch_map(NegBackward{}, n, grad_x, grad_y); return;
  }
  fail("cuda unary_backward: unknown op ", static_cast<int>(op));
}

void binary_forward(BinaryOp op, const float* a, const float* b, float* out, int64_t n) {
  with_binary_op(op, [&](auto binary) { launch_map(binary, n, out, a, b); });
}

void scalar_forward(BinaryOp op, const float* a, double scalar, float* out, int64_t n) {
  const float s = static_cast<float>(scalar);
  with_binary_op(op, [&](auto binary) { launch_map(WithScalar<decltype(binary)>{binary, s}, n, out, a); });
}

void fill(float* out, int64_t n, double value) { launch_map(Constant{static_cast<float>(value)}, n, out); }

void accumulate(float* destination, const float* source, int64_t n) {
  launch_map(Add{}, n, destination, static_cast<const float*>(destination), source);
}

void fill_from_scalar(float* out, int64_t n, const float* scalar, double scale) {
  launch_map(ScaledScalar{scalar, scale}, n, out);
}

void add_per_channel(float* x, const float* bias, int64_t batch, int64_t channels, int64_t spatial) {
  const int64_t planes = batch * channels;
  if (planes <= 0 || spatial <= 0) return;
  const unsigned int plane_blocks = static_cast<unsigned int>(planes < 65535 ? planes : 65535);
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  if (spatial % 4 == 0 && aligned16(x)) {
    const dim3 grid(::pixgrad::cuda::blocks_for(spatial / 4, kThreads), plane_blocks);
    add_per_channel_kernel<4><<<grid, kThreads, 0, stream>>>(x, bias, planes, channels, spatial / 4);
  } else {
    const dim3 grid(::pixgrad::cuda::blocks_for(spatial, kThreads), plane_blocks);
    add_per_channel_kernel<1><<<grid, kThreads, 0, stream>>>(x, bias, planes, channels, spatial);
  }
  PIXGRAD_CUDA_CHECK_LAUNCH();
}

}  // namespace pixgrad::kernels::cuda
