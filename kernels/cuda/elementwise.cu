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
// Math: the unary formulas are the CPU's, from kernels/elementwise_ops.h
// (which also says how FMA contraction is kept out).
#include <pixgrad/kernels/cuda/elementwise.h>

#include <pixgrad/kernels/cuda/device_helpers.cuh>
#include <pixgrad/kernels/alignment.h>
#include <pixgrad/kernels/cuda/runtime.cuh>

namespace pixgrad::kernels::cuda {

namespace {


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

// The shared formulas (kernels/elementwise_ops.h) as functors for launch_map.
template <typename Op>
struct UnaryForward {
  float p;
  __device__ float operator()(float x) const { return Op::forward(x, p); }
};
template <typename Op>
struct UnaryBackward {
  float p;
  __device__ float operator()(float v, float dy) const { return Op::backward(v, dy, p); }
};
template <typename Op>
struct UnaryDoubleBackward {
  float p;
  __device__ float operator()(float v, float dy, float ddx) const { return Op::double_backward(v, dy, ddx, p); }
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

void unary_forward(Gpu, UnaryOp op, const float* x, float* y, int64_t n, double parameter) {
  visit_unary(op, [&](auto unary) { launch_map(UnaryForward<decltype(unary)>{static_cast<float>(parameter)}, n, y, x); });
}

void unary_backward(Gpu, UnaryOp op, const float* operand, const float* grad_y, float* grad_x, int64_t n,
                    double parameter) {
  visit_unary(op, [&](auto unary) {
    launch_map(UnaryBackward<decltype(unary)>{static_cast<float>(parameter)}, n, grad_x, operand, grad_y);
  });
}

void unary_double_backward(Gpu, UnaryOp op, const float* operand, const float* grad_y, const float* grad_grad_x,
                           float* out, int64_t n, double parameter) {
  visit_unary(op, [&](auto unary) {
    launch_map(UnaryDoubleBackward<decltype(unary)>{static_cast<float>(parameter)}, n, out, operand, grad_y,
               grad_grad_x);
  });
}

void binary_forward(Gpu, BinaryOp op, const float* a, const float* b, float* out, int64_t n) {
  with_binary_op(op, [&](auto binary) { launch_map(binary, n, out, a, b); });
}

void scalar_forward(Gpu, BinaryOp op, const float* a, double scalar, float* out, int64_t n) {
  const float s = static_cast<float>(scalar);
  with_binary_op(op, [&](auto binary) { launch_map(WithScalar<decltype(binary)>{binary, s}, n, out, a); });
}

void fill(Gpu, float* out, int64_t n, double value) { launch_map(Constant{static_cast<float>(value)}, n, out); }

void accumulate(Gpu, float* destination, const float* source, int64_t n) {
  launch_map(Add{}, n, destination, static_cast<const float*>(destination), source);
}

void fill_from_scalar(Gpu, float* out, int64_t n, const float* scalar, double scale) {
  launch_map(ScaledScalar{scalar, scale}, n, out);
}

void add_per_channel(Gpu, float* x, const float* bias, int64_t batch, int64_t channels, int64_t spatial) {
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
