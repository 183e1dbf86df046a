// CUDA reductions: sum, sum |a - b| (the L1 loss), its sign gradient, and
// per-channel sums over [N, C, S] (the bias gradient of a convolution).
//
// Math: every term is widened to double and accumulated in double, as on the
// CPU, so the result is the exact sum rounded once to float in all but
// pathological cases; only the order of the additions differs from the CPU.
//
// Memory and determinism: two stages, never atomics. Stage 1 is a grid whose
// size depends only on n: each thread strides over the input (float4 packs
// when the pointers are 16-byte aligned), the block adds its threads' sums
// with warp shuffles and then one warp over the warp totals, and writes one
// double partial. Stage 2 is one block (or one thread per channel) adding
// the partials in index order. So which thread adds which element, and in
// what order, is fixed by the sizes: the same input gives the same bits on
// every run. Per-channel sums split each channel's N*S elements into up to 64
// contiguous chunks, one block per (channel, chunk), so a few channels with
// 65536 elements each still fill the GPU; a block walks its chunk as (n, i)
// pairs advanced by a fixed step, with no division per element.
#include <pixgrad/kernels/cuda/reduce.h>

#include <cstdint>

#include <pixgrad/kernels/cuda/device_helpers.cuh>
#include <pixgrad/kernels/cuda/elementwise.h>
#include <pixgrad/kernels/alignment.h>
#include <pixgrad/kernels/cuda/runtime.cuh>
#include <pixgrad/kernels/cuda/workspace.h>

namespace pixgrad::kernels::cuda {

namespace {

constexpr int kThreads = 256;  // every kernel here runs blocks of exactly kThreads
constexpr int kWarps = kThreads / 32;
constexpr int64_t kElementsPerBlock = 8192;  // below this, another block is not worth its partial
constexpr int64_t kMaxBlocks = 1024;         // partials of a whole-array reduction
constexpr int64_t kMaxSplits = 64;           // chunks per channel



// The total of v over the block, valid in thread 0. Called once per kernel by
// every thread (it holds a barrier).
__device__ __forceinline__ double block_sum(double v) {
  __shared__ double warp_totals[kWarps];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_sum(v);
  if (lane == 0) warp_totals[warp] = v;
  __syncthreads();
  if (warp == 0) v = warp_sum(lane < kWarps ? warp_totals[lane] : 0.0);
  return v;
}

struct Plain {
  __device__ double operator()(float x) const { return static_cast<double>(x); }
};
struct AbsDifference {
  __device__ double operator()(float a, float b) const { return fabs(static_cast<double>(a) - static_cast<double>(b)); }
};

template <int W, typename Term, typename... Packs>
__device__ __forceinline__ void add_pack(double& total, const Term& term, const Packs&... packs) {
#pragma unroll
  for (int k = 0; k < W; ++k) total += term(packs.v[k]...);
}

// partials[block] = sum over this block's share of term(inputs[i]...), i < n.
template <int W, typename Term, typename... Inputs>
__global__ void partial_sums_kernel(Term term, int64_t n, double* partials, Inputs... inputs) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t packs = n / W;
  double total = 0;
  for (int64_t p = first; p < packs; p += stride) add_pack<W>(total, term, load<W>(inputs + p * W)...);
  if constexpr (W > 1) {
    const int64_t tail = packs * W + first;  // fewer than W elements, one per thread
    if (tail < n) total += term(inputs[tail]...);
  }
  total = block_sum(total);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// One block: *out = float(sum of the partials).
__global__ void finish_sum_kernel(const double* partials, int64_t count, float* out) {
  double total = 0;
  for (int64_t k = threadIdx.x; k < count; k += blockDim.x) total += partials[k];
  total = block_sum(total);
  if (threadIdx.x == 0) *out = static_cast<float>(total);
}



template <typename Term, typename... Inputs>
void launch_total(Term term, int64_t n, float* out, Inputs... inputs) {
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  if (n <= 0) {  // an empty sum is 0
    PIXGRAD_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(float), stream));
    return;
  }
  const int64_t wanted = (n + kElementsPerBlock - 1) / kElementsPerBlock;
  const int64_t blocks = wanted < kMaxBlocks ? wanted : kMaxBlocks;
  const Workspace partials = Workspace::of<double>(blocks);
  double* partial = partials.as<double>();
  const unsigned int grid = static_cast<unsigned int>(blocks);
  if ((aligned16(inputs) && ...))
    partial_sums_kernel<4><<<grid, kThreads, 0, stream>>>(term, n, partial, inputs...);
  else
    partial_sums_kernel<1><<<grid, kThreads, 0, stream>>>(term, n, partial, inputs...);
  PIXGRAD_CUDA_CHECK_LAUNCH();
  finish_sum_kernel<<<1, kThreads, 0, stream>>>(partial, blocks, out);
  PIXGRAD_CUDA_CHECK_LAUNCH();
}

template <int W>
__global__ void sign_of_difference_kernel(const float* a, const float* b, const float* grad_scalar, double scale,
                                          float* grad_a, int64_t n) {
  const float s = static_cast<float>(static_cast<double>(*grad_scalar) * scale);
  const auto sign = [s](float x, float y) { return x > y ? s : (x < y ? -s : 0.0f); };
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t packs = n / W;
  for (int64_t p = first; p < packs; p += stride) {
    const Pack<W> x = load<W>(a + p * W), y = load<W>(b + p * W);
    Pack<W> result;
#pragma unroll
    for (int k = 0; k < W; ++k) result.v[k] = sign(x.v[k], y.v[k]);
    *reinterpret_cast<Pack<W>*>(grad_a + p * W) = result;
  }
  if constexpr (W > 1) {
    const int64_t tail = packs * W + first;
    if (tail < n) grad_a[tail] = sign(a[tail], b[tail]);
  }
}

// ---- per channel ------------------------------------------------------------


// grid (C, splits): partials[c * splits + split] = sum of the chunk.
template <int W>
__global__ void channel_partial_sums_kernel(const float* x, ChannelPacks layout, double* partials) {
  double total = 0;
  for_each_pack_of_chunk(layout, [&](int64_t pack) {
    const Pack<W> v = load<W>(x + pack * W);
#pragma unroll
    for (int k = 0; k < W; ++k) total += static_cast<double>(v.v[k]);
  });
  total = block_sum(total);
  if (threadIdx.x == 0) partials[static_cast<int64_t>(blockIdx.x) * gridDim.y + blockIdx.y] = total;
}

__global__ void finish_channel_sums_kernel(const double* partials, int64_t channels, int64_t splits, float* out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < channels; c += stride) {
    double total = 0;
    for (int64_t k = 0; k < splits; ++k) total += partials[c * splits + k];
    out[c] = static_cast<float>(total);
  }
}

}  // namespace

void sum(Gpu, const float* x, int64_t n, float* out) { launch_total(Plain{}, n, out, x); }

void sum_abs_difference(Gpu, const float* a, const float* b, int64_t n, double scale, float* out) {
  launch_total(AbsDifference{}, n, out, a, b);
  scalar_forward(gpu, BinaryOp::Mul, out, scale, out, 1);
}

void sign_of_difference(Gpu, const float* a, const float* b, const float* grad_scalar, double scale, float* grad_a,
                        int64_t n) {
  if (n <= 0) return;
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  if (aligned16(a) && aligned16(b) && aligned16(grad_a))
    sign_of_difference_kernel<4><<<::pixgrad::cuda::blocks_for((n + 3) / 4, kThreads), kThreads, 0, stream>>>(
        a, b, grad_scalar, scale, grad_a, n);
  else
    sign_of_difference_kernel<1><<<::pixgrad::cuda::blocks_for(n, kThreads), kThreads, 0, stream>>>(
        a, b, grad_scalar, scale, grad_a, n);
  PIXGRAD_CUDA_CHECK_LAUNCH();
}

void sum_per_channel(Gpu, const float* x, int64_t batch, int64_t channels, int64_t spatial, float* out) {
  if (channels <= 0) return;
  PIXGRAD_CHECK(channels <= INT32_MAX, "cuda sum_per_channel: ", channels, " channels is too many for one grid");
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  const int64_t elements = batch * spatial;
  const int64_t wanted = (elements + kElementsPerBlock - 1) / kElementsPerBlock;
  const int64_t splits = wanted < 1 ? 1 : (wanted > kMaxSplits ? kMaxSplits : wanted);
  const Workspace partials = Workspace::of<double>(channels * splits);
  double* partial = partials.as<double>();
  const dim3 grid(static_cast<unsigned int>(channels), static_cast<unsigned int>(splits));
  if (spatial % 4 == 0 && aligned16(x))
    channel_partial_sums_kernel<4><<<grid, kThreads, 0, stream>>>(x, ChannelPacks{batch, channels, spatial / 4},
                                                                  partial);
  else
    channel_partial_sums_kernel<1><<<grid, kThreads, 0, stream>>>(x, ChannelPacks{batch, channels, spatial},
                                                                  partial);
  PIXGRAD_CUDA_CHECK_LAUNCH();
  finish_channel_sums_kernel<<<::pixgrad::cuda::blocks_for(channels, kThreads), kThreads, 0, stream>>>(
      partial, channels, splits, out);
  PIXGRAD_CUDA_CHECK_LAUNCH();
}

}  // namespace pixgrad::kernels::cuda
