// Batch normalisation over x [N, C, S], per channel c, on CUDA.
//
// Math (as kernels/cpu/batch_norm.cpp, in double wherever the CPU uses double):
//   forward (training): mu = sum(x) / M and var = sum((x - mu)^2) / M with M = N*S
//     (two passes: the stable centred variance), invstd = 1 / sqrt(var + eps),
//     y = x * scale + shift with scale = float(invstd * gamma) and
//     shift = float(beta - mu * invstd * gamma); unbiased_var = var * M / (M - 1).
//   forward (inference): scale = invstd * gamma, shift = beta - mean * scale, in float.
//   backward: sum(dy) and sum(dy * xhat) per channel, then
//     dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) with batch
//     statistics, dx = gamma * invstd * dy with fixed ones (the means are 0).
// The per-element formulas use __fmul_rn-style intrinsics so nvcc cannot fuse a
// product into an FMA: given the same statistics, y and dx are the CPU's bits.
// The statistics themselves differ from the CPU only in the order of their
// double additions.
//
// Memory (handwritten): a channel's M elements are split into up to 64
// contiguous chunks; grid (C, chunks), one 256-thread block per chunk, so a
// few channels of 65536 elements each (N*S of pix2pix's outer layers) still
// fill the GPU while hundreds of small channels get one block each. A block
// walks its chunk in float4 packs when S % 4 == 0 and the pointers are 16-byte
// aligned, as (n, i) pairs advanced by a fixed step (no division per element).
// Each block reduces in double (warp shuffles, then one warp over the warp
// totals) to one partial per chunk; the next kernel's blocks first add their
// channel's partials in index order (one warp), which is the two-level
// reduction. Forward training = 3 kernels (sum; centred squares; normalise),
// each reading x once, like the CPU's three passes; backward = 2 (sums; dx).
// Determinism: chunking depends only on the shape, never on the GPU or on
// timing, and no atomics are used, so the same input gives the same bits.
//
// Epilogue (kernels/norm_epilogue.h): the normalising kernels apply dropout
// and an activation to what they write; both backward kernels undo them on
// dy as they read it, from the saved output and the mask drawn again. A
// pack's masks come from one Philox block (packs of four are aligned in the
// tensor), as the dropout kernel draws them.
//
// cuDNN (PIXGRAD_BN_IMPL=cudnn): CUDNN_BATCHNORM_SPATIAL with x described as
// [N, C, S, 1]. cuDNN's "saved inverse variance" is 1 / sqrt(var + eps), our
// invstd, and its saved mean is our mean, so the two implementations' outputs
// are interchangeable. We keep the running statistics ourselves
// (batch_norm_update_running, in float like the CPU); from cuDNN we only want
// the batch's unbiased variance, so it runs with exponentialAverageFactor = 1
// on zeroed running buffers: running = 0 * 0 + 1 * batch statistic. Absent
// weight / bias become ones / zeros. ForwardInference takes a variance, not an
// invstd: we pass var = 1 / invstd^2 - kCudnnEpsilon with kCudnnEpsilon, so
// cuDNN's 1 / sqrt(var + eps) is our invstd to float rounding. Backward uses
// our saved mean / invstd; its epsilon argument is then unused, and we pass
// kCudnnEpsilon (>= CUDNN_BN_MIN_EPSILON). Calls cuDNN cannot serve use the
// handwritten kernels: eps < CUDNN_BN_MIN_EPSILON (0 in cuDNN 9, 1e-5 in old
// versions), M < 2, more than 2^31 - 1 elements, backward with fixed
// statistics (cuDNN has none) or without grad_x (cuDNN always writes dx).
#include <pixgrad/kernels/cuda/batch_norm.h>

#include <cudnn.h>
#include <math_constants.h>

#include <atomic>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <type_traits>

#include <pixgrad/kernels/cuda/elementwise.h>
#include <pixgrad/kernels/cuda/device_helpers.cuh>
#include <pixgrad/kernels/alignment.h>
#include <pixgrad/kernels/cuda/runtime.cuh>
#include <pixgrad/kernels/cuda/workspace.h>

namespace pixgrad::kernels::cuda {

namespace {


constexpr int kThreads = 256;  // every kernel here runs blocks of exactly kThreads
constexpr int kWarps = kThreads / 32;
constexpr int64_t kElementsPerBlock = 8192;  // a chunk smaller than this is not worth its block
constexpr int64_t kMaxSplits = 64;           // chunks per channel
constexpr double kCudnnEpsilon = 1e-5;
static_assert(kCudnnEpsilon >= CUDNN_BN_MIN_EPSILON, "kCudnnEpsilon must be a valid cuDNN epsilon");



// Replaces values[k] by its total over the block, valid in thread 0. Called at
// most once per kernel, by every thread (it holds a barrier).
template <int K>
__device__ __forceinline__ void block_sum(double (&values)[K]) {
  __shared__ double warp_totals[K][kWarps];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    values[k] = warp_sum(values[k]);
    if (lane == 0) warp_totals[k][warp] = values[k];
  }
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int k = 0; k < K; ++k) values[k] = warp_sum(lane < kWarps ? warp_totals[k][lane] : 0.0);
  }
}

// values[0] + ... + values[count - 1] in a fixed order, by the 32 lanes of one
// warp; valid in lane 0.
__device__ __forceinline__ double warp_total(const double* values, int64_t count) {
  double total = 0;
  for (int64_t k = threadIdx.x % 32; k < count; k += 32) total += values[k];
  return warp_sum(total);
}


// y = epilogue(x * scale + shift) over this block's chunk of the channel; the
// rounded intrinsics keep the result identical to the CPU's (no fused
// multiply-add). Pack p holds elements W*p .. W*p + W - 1 of the tensor.
template <int W, bool kFused>
__device__ __forceinline__ void apply_scale_shift(const float* x, const ChannelPacks& layout, float scale,
                                                  float shift, const NormEpilogue& epilogue, float* y) {
  for_each_pack_of_chunk(layout, [&](int64_t pack) {
    Pack<W> v = load<W>(x + pack * W);
    float masks[W];
    if constexpr (kFused) epilogue_pack_masks<W>(epilogue, static_cast<uint64_t>(pack), masks);
#pragma unroll
    for (int k = 0; k < W; ++k) {
      v.v[k] = __fadd_rn(__fmul_rn(v.v[k], scale), shift);
      if constexpr (kFused) v.v[k] = epilogue_forward(epilogue, v.v[k], masks[k]);
    }
    store<W>(y + pack * W, v);
  });
}

// grad_y of pack `pack` with the epilogue undone (y: the forward's output).
template <int W, bool kFused>
__device__ __forceinline__ Pack<W> incoming_gradient(const float* grad_y, const float* y, const NormEpilogue& epilogue,
                                                     int64_t pack) {
  Pack<W> dy = load<W>(grad_y + pack * W);
  if constexpr (!kFused) return dy;
  const Pack<W> out = load<W>(y + pack * W);
  float masks[W];
  epilogue_pack_masks<W>(epilogue, static_cast<uint64_t>(pack), masks);
#pragma unroll
  for (int k = 0; k < W; ++k) dy.v[k] = epilogue_backward(epilogue, out.v[k], dy.v[k], masks[k]);
  return dy;
}

// ---- forward, training ----------------------------------------------------------
// Grid (C, splits); partial arrays are [C][splits], indexed c * splits + chunk.

template <int W>
__global__ void channel_sums_kernel(const float* x, ChannelPacks layout, double* partial_sums) {
  double total[1] = {0};
  for_each_pack_of_chunk(layout, [&](int64_t pack) {
    const Pack<W> v = load<W>(x + pack * W);
#pragma unroll
    for (int k = 0; k < W; ++k) total[0] += static_cast<double>(v.v[k]);
  });
  block_sum(total);
  if (threadIdx.x == 0) partial_sums[static_cast<int64_t>(blockIdx.x) * gridDim.y + blockIdx.y] = total[0];
}

template <int W>
__global__ void centred_squares_kernel(const float* x, ChannelPacks layout, double count,
                                       const double* partial_sums, double* partial_squares) {
  const int64_t c = blockIdx.x, splits = gridDim.y;
  __shared__ double mean_shared;
  if (threadIdx.x < 32) {
    const double total = warp_total(partial_sums + c * splits, splits);
    if (threadIdx.x == 0) mean_shared = total / count;
  }
  __syncthreads();
  const double mu = mean_shared;
  double squares[1] = {0};
  for_each_pack_of_chunk(layout, [&](int64_t pack) {
    const Pack<W> v = load<W>(x + pack * W);
#pragma unroll
    for (int k = 0; k < W; ++k) {
      const double centred = static_cast<double>(v.v[k]) - mu;
      squares[0] += centred * centred;
    }
  });
  block_sum(squares);
  if (threadIdx.x == 0) partial_squares[c * splits + blockIdx.y] = squares[0];
}

// Channel c's statistics from its mean and sum of squared deviations:
// writes them when `write`, returns the scale and shift that normalise it.
struct ScaleShift {
  float scale, shift;
};
__device__ __forceinline__ ScaleShift finish_statistics(int64_t c, double count, double mu, double squares, double eps,
                                                        const float* weight, const float* bias, bool write,
                                                        float* mean, float* invstd, float* unbiased_var) {
  const double variance = squares / count;
  const double inv = 1.0 / sqrt(variance + eps);
  const double gamma = weight ? static_cast<double>(weight[c]) : 1.0;
  const double beta = bias ? static_cast<double>(bias[c]) : 0.0;
  if (write) {
    mean[c] = static_cast<float>(mu);
    invstd[c] = static_cast<float>(inv);
    unbiased_var[c] = static_cast<float>(count > 1 ? squares / (count - 1) : variance);
  }
  return {static_cast<float>(__dmul_rn(inv, gamma)),
          static_cast<float>(__dsub_rn(beta, __dmul_rn(__dmul_rn(mu, inv), gamma)))};
}

// Finishes the statistics (chunk 0 of each channel writes them) and writes y.
template <int W, bool kFused>
__global__ void normalize_training_kernel(const float* x, ChannelPacks layout, double count, double eps,
                                          const double* partial_sums, const double* partial_squares,
                                          const float* weight, const float* bias, NormEpilogue given,
                                          float* y, float* mean, float* invstd, float* unbiased_var) {
  const NormEpilogue epilogue = given.resolved();
  const int64_t c = blockIdx.x, splits = gridDim.y;
  __shared__ ScaleShift normalising;
  if (threadIdx.x < 32) {
    const double total = warp_total(partial_sums + c * splits, splits);
    const double squares = warp_total(partial_squares + c * splits, splits);
    if (threadIdx.x == 0)
      normalising = finish_statistics(c, count, total / count, squares, eps, weight, bias, blockIdx.y == 0, mean,
                                      invstd, unbiased_var);
  }
  __syncthreads();
  const ScaleShift s = normalising;
  apply_scale_shift<W, kFused>(x, layout, s.scale, s.shift, epilogue, y);
}

// ---- forward, training, from the moments x's producer wrote -----------------------

// One warp per channel: the statistics from the channel's records, in
// kernels/channel_moments.h's two passes (each a fixed-order warp sum);
// scale_shift[c] for the kernel below. Records that count other than the
// channel's values are not this input's: the statistics are then NaN, which
// the output and the running statistics carry (refusing them on the host
// would cost a synchronisation).
__global__ void statistics_from_moments_kernel(const MomentRecord* records, int64_t per_channel, double count,
                                               double eps, const float* weight, const float* bias, float* mean,
                                               float* invstd, float* unbiased_var, ScaleShift* scale_shift) {
  const int64_t c = blockIdx.x;
  const MomentRecord* own = records + c * per_channel;
  double sum = 0, counted = 0;
  for (int64_t r = threadIdx.x; r < per_channel; r += 32) {
    sum += own[r].sum;
    counted += own[r].count;
  }
  sum = warp_sum(sum);
  counted = warp_sum(counted);
  const double lane0_mean = counted == count ? sum / count : CUDART_NAN;
  const double mu = __shfl_sync(0xffffffffu, lane0_mean, 0);  // lane 0's, in every lane
  double squares = 0;
  for (int64_t r = threadIdx.x; r < per_channel; r += 32) squares += centred_share(own[r], mu);
  squares = warp_sum(squares);
  if (threadIdx.x == 0)
    scale_shift[c] = finish_statistics(c, count, mu, squares, eps, weight, bias, true, mean, invstd, unbiased_var);
}

template <int W, bool kFused>
__global__ void normalize_with_kernel(const float* x, ChannelPacks layout, const ScaleShift* scale_shift,
                                      NormEpilogue given, float* y) {
  const ScaleShift s = scale_shift[blockIdx.x];
  apply_scale_shift<W, kFused>(x, layout, s.scale, s.shift, given.resolved(), y);
}

// ---- forward, inference -----------------------------------------------------------

template <int W, bool kFused>
__global__ void normalize_inference_kernel(const float* x, ChannelPacks layout, const float* weight,
                                           const float* bias, const float* mean, const float* invstd,
                                           NormEpilogue given, float* y) {
  const NormEpilogue epilogue = given.resolved();
  const int64_t c = blockIdx.x;
  const float scale = invstd[c] * (weight ? weight[c] : 1.0f);
  const float shift = __fsub_rn(bias ? bias[c] : 0.0f, __fmul_rn(mean[c], scale));
  apply_scale_shift<W, kFused>(x, layout, scale, shift, epilogue, y);
}

// ---- backward -----------------------------------------------------------------

// partial_dy / partial_dy_xhat [C][gridDim.y] = sum(dy), sum(dy * (x - mu) * invstd) over the chunk.
template <int W, bool kFused>
__global__ void backward_sums_kernel(const float* x, const float* grad_y, const float* y, NormEpilogue given,
                                     ChannelPacks layout, const float* mean, const float* invstd, double* partial_dy,
                                     double* partial_dy_xhat) {
  const NormEpilogue epilogue = given.resolved();
  const int64_t c = blockIdx.x;
  const double mu = mean[c], inv = invstd[c];
  double sums[2] = {0, 0};
  for_each_pack_of_chunk(layout, [&](int64_t pack) {
    const Pack<W> in = load<W>(x + pack * W), dy = incoming_gradient<W, kFused>(grad_y, y, epilogue, pack);
#pragma unroll
    for (int k = 0; k < W; ++k) {
      const double g = dy.v[k];
      sums[0] += g;
      sums[1] += g * (static_cast<double>(in.v[k]) - mu) * inv;
    }
  });
  block_sum(sums);
  if (threadIdx.x == 0) {
    partial_dy[c * gridDim.y + blockIdx.y] = sums[0];
    partial_dy_xhat[c * gridDim.y + blockIdx.y] = sums[1];
  }
}

// Finishes the sums (null partials: none were needed, they count as 0), writes
// grad_weight / grad_bias from chunk 0, then grad_x if it is wanted.
template <int W, bool kFused>
__global__ void backward_apply_kernel(const float* x, const float* grad_y, const float* y, NormEpilogue given,
                                      ChannelPacks layout, double count,
                                      const double* partial_dy, const double* partial_dy_xhat,
                                      int64_t partial_splits, bool batch_statistics, const float* weight,
                                      const float* mean, const float* invstd, float* grad_x, float* grad_weight,
                                      float* grad_bias) {
  const NormEpilogue epilogue = given.resolved();
  const int64_t c = blockIdx.x;
  __shared__ double mean_dy_shared, mean_dy_xhat_shared;
  if (threadIdx.x < 32) {
    double sum_dy = 0, sum_dy_xhat = 0;
    if (partial_dy) {
      sum_dy = warp_total(partial_dy + c * partial_splits, partial_splits);
      sum_dy_xhat = warp_total(partial_dy_xhat + c * partial_splits, partial_splits);
    }
    if (threadIdx.x == 0) {
      if (blockIdx.y == 0 && grad_weight) grad_weight[c] = static_cast<float>(sum_dy_xhat);
      if (blockIdx.y == 0 && grad_bias) grad_bias[c] = static_cast<float>(sum_dy);
      mean_dy_shared = batch_statistics ? sum_dy / count : 0.0;
      mean_dy_xhat_shared = batch_statistics ? sum_dy_xhat / count : 0.0;
    }
  }
  __syncthreads();
  if (!grad_x) return;
  const double mean_dy = mean_dy_shared, mean_dy_xhat = mean_dy_xhat_shared;
  const double mu = mean[c], inv = invstd[c];
  const double gamma_inv = __dmul_rn(weight ? static_cast<double>(weight[c]) : 1.0, inv);
  for_each_pack_of_chunk(layout, [&](int64_t pack) {
    const Pack<W> in = load<W>(x + pack * W), dy = incoming_gradient<W, kFused>(grad_y, y, epilogue, pack);
    Pack<W> dx;
#pragma unroll
    for (int k = 0; k < W; ++k) {
      const double xhat = __dmul_rn(static_cast<double>(in.v[k]) - mu, inv);
      const double centred = __dsub_rn(static_cast<double>(dy.v[k]) - mean_dy, __dmul_rn(xhat, mean_dy_xhat));
      dx.v[k] = static_cast<float>(__dmul_rn(gamma_inv, centred));
    }
    store<W>(grad_x + pack * W, dx);
  });
}

// ---- per-channel vectors ------------------------------------------------------------

__global__ void update_running_kernel(int64_t channels, const float* mean, const float* unbiased_var, float momentum,
                                      float* running_mean, float* running_var) {
  const float keep = 1.0f - momentum;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < channels; c += stride) {
    running_mean[c] = __fadd_rn(__fmul_rn(keep, running_mean[c]), __fmul_rn(momentum, mean[c]));
    running_var[c] = __fadd_rn(__fmul_rn(keep, running_var[c]), __fmul_rn(momentum, unbiased_var[c]));
  }
}

__global__ void statistics_from_running_kernel(int64_t channels, const float* running_mean,
                                               const float* running_var, double eps, float* mean, float* invstd) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < channels; c += stride) {
    mean[c] = running_mean[c];
    invstd[c] = static_cast<float>(1.0 / sqrt(static_cast<double>(running_var[c]) + eps));
  }
}

// The variance cuDNN's inference needs for 1 / sqrt(variance + epsilon) to be invstd.
__global__ void variance_from_invstd_kernel(int64_t channels, const float* invstd, double epsilon, float* variance) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < channels; c += stride) {
    const double inv = invstd[c];
    variance[c] = static_cast<float>(1.0 / (inv * inv) - epsilon);
  }
}

// ---- handwritten launchers ------------------------------------------------------------


// Runs launch(std::integral_constant<int, W>) with W = 4 (float4 packs) or 1.
template <typename Launch>
void with_pack_width(bool vectorised, Launch launch) {
  if (vectorised)
    launch(std::integral_constant<int, 4>{});
  else
    launch(std::integral_constant<int, 1>{});
}

// Runs launch(std::bool_constant<kFused>): the kernels without an epilogue are
// compiled apart, so that its registers do not cost them occupancy.
template <typename Launch>
void with_epilogue(const NormEpilogue& epilogue, Launch launch) {
  if (epilogue.identity())
    launch(std::false_type{});
  else
    launch(std::true_type{});
}

bool packs_of_four(const BatchNormShape& s, std::initializer_list<const void*> pointers) {
  if (s.spatial % 4 != 0) return false;
  for (const void* pointer : pointers)
    if (!aligned16(pointer)) return false;
  return true;
}

int64_t splits_for(const BatchNormShape& s) {
  const int64_t wanted = (s.batch * s.spatial + kElementsPerBlock - 1) / kElementsPerBlock;
  return wanted < 1 ? 1 : (wanted > kMaxSplits ? kMaxSplits : wanted);
}

dim3 channel_grid(const BatchNormShape& s, int64_t splits) {
  PIXGRAD_CHECK(s.channels <= INT32_MAX, "cuda batch_norm: ", s.channels, " channels is too many for one grid");
  return dim3(static_cast<unsigned int>(s.channels), static_cast<unsigned int>(splits));
}

unsigned int vector_blocks(int64_t channels) { return ::pixgrad::cuda::blocks_for(channels, kThreads); }

void forward_training_handwritten(const BatchNormShape& s, const float* x, const float* weight, const float* bias,
                                  double eps, const NormEpilogue& epilogue, float* y, float* mean, float* invstd,
                                  float* unbiased_var) {
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  const int64_t splits = splits_for(s);
  const dim3 grid = channel_grid(s, splits);
  const Workspace partials = Workspace::of<double>(2 * s.channels * splits);
  double* partial_sums = partials.as<double>();
  double* partial_squares = partial_sums + s.channels * splits;
  const double count = static_cast<double>(s.batch * s.spatial);
  with_pack_width(packs_of_four(s, {x, y}), [&](auto width) {
    constexpr int W = decltype(width)::value;
    const ChannelPacks layout{s.batch, s.channels, s.spatial / W};
    channel_sums_kernel<W><<<grid, kThreads, 0, stream>>>(x, layout, partial_sums);
    PIXGRAD_CUDA_CHECK_LAUNCH();
    centred_squares_kernel<W><<<grid, kThreads, 0, stream>>>(x, layout, count, partial_sums, partial_squares);
    PIXGRAD_CUDA_CHECK_LAUNCH();
    with_epilogue(epilogue, [&](auto fused) {
      normalize_training_kernel<W, decltype(fused)::value><<<grid, kThreads, 0, stream>>>(
          x, layout, count, eps, partial_sums, partial_squares, weight, bias, epilogue, y, mean, invstd,
          unbiased_var);
      PIXGRAD_CUDA_CHECK_LAUNCH();
    });
  });
}

void forward_training_from_moments(const BatchNormShape& s, const float* x, const float* weight, const float* bias,
                                   double eps, const NormEpilogue& epilogue, const GivenMoments& moments, float* y,
                                   float* mean, float* invstd, float* unbiased_var) {
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  const Workspace workspace = Workspace::of<ScaleShift>(s.channels);
  ScaleShift* scale_shift = workspace.as<ScaleShift>();
  const dim3 grid = channel_grid(s, splits_for(s));
  statistics_from_moments_kernel<<<grid.x, 32, 0, stream>>>(moments.records, moments.per_channel,
                                                            static_cast<double>(s.batch * s.spatial), eps, weight,
                                                            bias, mean, invstd, unbiased_var, scale_shift);
  PIXGRAD_CUDA_CHECK_LAUNCH();
  with_pack_width(packs_of_four(s, {x, y}), [&](auto width) {
    constexpr int W = decltype(width)::value;
    const ChannelPacks layout{s.batch, s.channels, s.spatial / W};
    with_epilogue(epilogue, [&](auto fused) {
      normalize_with_kernel<W, decltype(fused)::value><<<grid, kThreads, 0, stream>>>(x, layout, scale_shift,
                                                                                      epilogue, y);
      PIXGRAD_CUDA_CHECK_LAUNCH();
    });
  });
}

void forward_inference_handwritten(const BatchNormShape& s, const float* x, const float* weight, const float* bias,
                                   const float* mean, const float* invstd, const NormEpilogue& epilogue, float* y) {
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  const dim3 grid = channel_grid(s, splits_for(s));
  with_pack_width(packs_of_four(s, {x, y}), [&](auto width) {
    constexpr int W = decltype(width)::value;
    const ChannelPacks layout{s.batch, s.channels, s.spatial / W};
    with_epilogue(epilogue, [&](auto fused) {
      normalize_inference_kernel<W, decltype(fused)::value><<<grid, kThreads, 0, stream>>>(
          x, layout, weight, bias, mean, invstd, epilogue, y);
      PIXGRAD_CUDA_CHECK_LAUNCH();
    });
  });
}

void backward_handwritten(const BatchNormShape& s, const float* x, const float* grad_y, const float* weight,
                          const float* mean, const float* invstd, bool batch_statistics, float* grad_x,
                          float* grad_weight, float* grad_bias, const float* y, const NormEpilogue& epilogue) {
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  const int64_t splits = splits_for(s);
  // Without batch statistics and parameter gradients, dx needs no sums (the CPU's are multiplied by 0).
  const bool need_sums = batch_statistics || grad_weight || grad_bias;
  Workspace partials;
  double* partial_dy = nullptr;
  double* partial_dy_xhat = nullptr;
  if (need_sums) {
    partials = Workspace::of<double>(2 * s.channels * splits);
    partial_dy = partials.as<double>();
    partial_dy_xhat = partial_dy + s.channels * splits;
  }
  const double count = static_cast<double>(s.batch * s.spatial);
  const float* output = epilogue.identity() ? x : y;  // an aligned pointer either way; read only with an epilogue
  with_pack_width(packs_of_four(s, {x, grad_y, grad_x, output}), [&](auto width) {
    constexpr int W = decltype(width)::value;
    const ChannelPacks layout{s.batch, s.channels, s.spatial / W};
    with_epilogue(epilogue, [&](auto fused) {
      constexpr bool kFused = decltype(fused)::value;
      if (need_sums) {
        backward_sums_kernel<W, kFused><<<channel_grid(s, splits), kThreads, 0, stream>>>(
            x, grad_y, output, epilogue, layout, mean, invstd, partial_dy, partial_dy_xhat);
        PIXGRAD_CUDA_CHECK_LAUNCH();
      }
      // Without grad_x only chunk 0's parameter gradients are left to write.
      backward_apply_kernel<W, kFused><<<channel_grid(s, grad_x ? splits : 1), kThreads, 0, stream>>>(
          x, grad_y, output, epilogue, layout, count, partial_dy, partial_dy_xhat, splits, batch_statistics, weight,
          mean, invstd, grad_x, grad_weight, grad_bias);
      PIXGRAD_CUDA_CHECK_LAUNCH();
    });
  });
}

// ---- cuDNN --------------------------------------------------------------------------

void check_cudnn(cudnnStatus_t status, const char* call) {
  if (status != CUDNN_STATUS_SUCCESS) fail("cuda batch_norm: ", call, " failed: ", cudnnGetErrorString(status));
}

// One handle per device, created on first use and kept for the process; it is
// bound to the device's stream on every call.
cudnnHandle_t cudnn_handle() {
  constexpr int kMaxDevices = 16;
  static std::mutex mutex;
  static cudnnHandle_t handles[kMaxDevices] = {};
  const int device = ::pixgrad::cuda::current_device();
  PIXGRAD_CHECK(device >= 0 && device < kMaxDevices, "cuda batch_norm: device ", device, " out of range");
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  std::lock_guard<std::mutex> lock(mutex);
  if (!handles[device]) check_cudnn(cudnnCreate(&handles[device]), "cudnnCreate");
  check_cudnn(cudnnSetStream(handles[device], stream), "cudnnSetStream");
  return handles[device];
}

class TensorDescriptor {
 public:
  TensorDescriptor() { check_cudnn(cudnnCreateTensorDescriptor(&descriptor_), "cudnnCreateTensorDescriptor"); }
  ~TensorDescriptor() { cudnnDestroyTensorDescriptor(descriptor_); }
  TensorDescriptor(const TensorDescriptor&) = delete;
  TensorDescriptor& operator=(const TensorDescriptor&) = delete;
  cudnnTensorDescriptor_t get() const { return descriptor_; }

 private:
  cudnnTensorDescriptor_t descriptor_ = nullptr;
};

// x as [N, C, S, 1] and the per-channel vectors as cuDNN derives them ([1, C, 1, 1]).
struct CudnnDescriptors {
  TensorDescriptor data, channel;
  explicit CudnnDescriptors(const BatchNormShape& s) {
    check_cudnn(cudnnSetTensor4dDescriptor(data.get(), CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, static_cast<int>(s.batch),
                                           static_cast<int>(s.channels), static_cast<int>(s.spatial), 1),
                "cudnnSetTensor4dDescriptor");
    check_cudnn(cudnnDeriveBNTensorDescriptor(channel.get(), data.get(), CUDNN_BATCHNORM_SPATIAL),
                "cudnnDeriveBNTensorDescriptor");
  }
};

bool cudnn_chosen_for(const BatchNormShape& s) {
  return batch_norm_impl() == BatchNormImpl::Cudnn && s.batch > 0 && s.channels > 0 && s.spatial > 0 &&
         s.batch * s.channels * s.spatial <= INT32_MAX;
}

// Per-channel float scratch [3][C]: block k at data + k * C.
struct ChannelScratch {
  Workspace memory;
  float* block(int64_t k, int64_t channels) const { return memory.as<float>() + k * channels; }
};

ChannelScratch channel_scratch(int64_t channels) { return {Workspace::of<float>(3 * channels)}; }

const float kOne = 1.0f, kZero = 0.0f;  // cuDNN's alpha / beta: y = 1 * result + 0 * y

void forward_training_cudnn(const BatchNormShape& s, const float* x, const float* weight, const float* bias,
                            double eps, float* y, float* mean, float* invstd, float* unbiased_var) {
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  const int64_t C = s.channels;
  const ChannelScratch vectors = channel_scratch(C);
  float* ones = vectors.block(0, C);
  float* zeros = vectors.block(1, C);
  float* running_mean = vectors.block(2, C);  // wanted only because cuDNN updates the running pair together
  if (!weight) fill(gpu, ones, C, 1.0);
  const size_t bytes = static_cast<size_t>(C) * sizeof(float);
  if (!bias) PIXGRAD_CUDA_CHECK(cudaMemsetAsync(zeros, 0, bytes, stream));
  PIXGRAD_CUDA_CHECK(cudaMemsetAsync(running_mean, 0, bytes, stream));
  PIXGRAD_CUDA_CHECK(cudaMemsetAsync(unbiased_var, 0, bytes, stream));
  const CudnnDescriptors d(s);
  check_cudnn(cudnnBatchNormalizationForwardTraining(cudnn_handle(), CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero,
                                                     d.data.get(), x, d.data.get(), y, d.channel.get(),
                                                     weight ? weight : ones, bias ? bias : zeros, 1.0, running_mean,
                                                     unbiased_var, eps, mean, invstd),
              "cudnnBatchNormalizationForwardTraining");
}

void forward_inference_cudnn(const BatchNormShape& s, const float* x, const float* weight, const float* bias,
                             const float* mean, const float* invstd, float* y) {
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  const int64_t C = s.channels;
  const ChannelScratch vectors = channel_scratch(C);
  float* ones = vectors.block(0, C);
  float* zeros = vectors.block(1, C);
  float* variance = vectors.block(2, C);
  if (!weight) fill(gpu, ones, C, 1.0);
  if (!bias) PIXGRAD_CUDA_CHECK(cudaMemsetAsync(zeros, 0, static_cast<size_t>(C) * sizeof(float), stream));
  variance_from_invstd_kernel<<<vector_blocks(C), kThreads, 0, stream>>>(C, invstd, kCudnnEpsilon, variance);
  PIXGRAD_CUDA_CHECK_LAUNCH();
  const CudnnDescriptors d(s);
  check_cudnn(cudnnBatchNormalizationForwardInference(cudnn_handle(), CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero,
                                                      d.data.get(), x, d.data.get(), y, d.channel.get(),
                                                      weight ? weight : ones, bias ? bias : zeros, mean, variance,
                                                      kCudnnEpsilon),
              "cudnnBatchNormalizationForwardInference");
}

void backward_cudnn(const BatchNormShape& s, const float* x, const float* grad_y, const float* weight,
                    const float* mean, const float* invstd, float* grad_x, float* grad_weight, float* grad_bias) {
  const int64_t C = s.channels;
  const ChannelScratch vectors = channel_scratch(C);
  float* ones = vectors.block(0, C);
  if (!weight) fill(gpu, ones, C, 1.0);
  const CudnnDescriptors d(s);
  check_cudnn(cudnnBatchNormalizationBackward(cudnn_handle(), CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, &kOne, &kZero,
                                              d.data.get(), x, d.data.get(), grad_y, d.data.get(), grad_x,
                                              d.channel.get(), weight ? weight : ones,
                                              grad_weight ? grad_weight : vectors.block(1, C),
                                              grad_bias ? grad_bias : vectors.block(2, C), kCudnnEpsilon, mean,
                                              invstd),
              "cudnnBatchNormalizationBackward");
}

// ---- implementation choice ------------------------------------------------------------

std::atomic<int> chosen_impl{-1};  // -1: not set, follow PIXGRAD_BN_IMPL

BatchNormImpl impl_from_environment() {
  const char* value = std::getenv("PIXGRAD_BN_IMPL");
  if (value == nullptr || *value == '\0' || std::strcmp(value, "handwritten") == 0) return BatchNormImpl::Handwritten;
  if (std::strcmp(value, "cudnn") == 0) return BatchNormImpl::Cudnn;
  fail("PIXGRAD_BN_IMPL must be 'handwritten' or 'cudnn', not '", value, "'");
}

}  // namespace

BatchNormImpl batch_norm_impl() {
  const int chosen = chosen_impl.load(std::memory_order_relaxed);
  if (chosen >= 0) return static_cast<BatchNormImpl>(chosen);
  static const BatchNormImpl from_environment = impl_from_environment();
  return from_environment;
}

void set_batch_norm_impl(BatchNormImpl impl) { chosen_impl.store(static_cast<int>(impl), std::memory_order_relaxed); }

void batch_norm_forward_training(Gpu, const BatchNormShape& s, const float* x, const float* weight, const float* bias,
                                 double eps, float* y, float* mean, float* invstd, float* unbiased_var,
                                 const NormEpilogue& epilogue, const GivenMoments& moments) {
  if (s.channels <= 0) return;
  if (epilogue.identity() && cudnn_chosen_for(s) && s.batch * s.spatial >= 2 && eps >= CUDNN_BN_MIN_EPSILON)
    forward_training_cudnn(s, x, weight, bias, eps, y, mean, invstd, unbiased_var);
  else if (moments.records != nullptr)
    forward_training_from_moments(s, x, weight, bias, eps, epilogue, moments, y, mean, invstd, unbiased_var);
  else
    forward_training_handwritten(s, x, weight, bias, eps, epilogue, y, mean, invstd, unbiased_var);
}

void batch_norm_forward_inference(Gpu, const BatchNormShape& s, const float* x, const float* weight, const float* bias,
                                  const float* mean, const float* invstd, float* y, const NormEpilogue& epilogue) {
  if (s.channels <= 0 || s.batch * s.spatial <= 0) return;
  if (epilogue.identity() && cudnn_chosen_for(s))
    forward_inference_cudnn(s, x, weight, bias, mean, invstd, y);
  else
    forward_inference_handwritten(s, x, weight, bias, mean, invstd, epilogue, y);
}

void batch_norm_backward(Gpu, const BatchNormShape& s, const float* x, const float* grad_y, const float* weight,
                         const float* mean, const float* invstd, bool batch_statistics, float* grad_x,
                         float* grad_weight, float* grad_bias, const float* y, const NormEpilogue& epilogue) {
  if (s.channels <= 0 || (!grad_x && !grad_weight && !grad_bias)) return;
  PIXGRAD_CHECK(epilogue.identity() || y, "cuda batch_norm: the backward of an epilogue needs the forward's output");
  if (epilogue.identity() && cudnn_chosen_for(s) && batch_statistics && grad_x)
    backward_cudnn(s, x, grad_y, weight, mean, invstd, grad_x, grad_weight, grad_bias);
  else
    backward_handwritten(s, x, grad_y, weight, mean, invstd, batch_statistics, grad_x, grad_weight, grad_bias, y,
                         epilogue);
}

void batch_norm_update_running(Gpu, int64_t channels, const float* mean, const float* unbiased_var, double momentum,
                               float* running_mean, float* running_var) {
  if (channels <= 0) return;
  update_running_kernel<<<vector_blocks(channels), kThreads, 0, ::pixgrad::cuda::current_stream()>>>(
      channels, mean, unbiased_var, static_cast<float>(momentum), running_mean, running_var);
  PIXGRAD_CUDA_CHECK_LAUNCH();
}

void batch_norm_statistics_from_running(Gpu, int64_t channels, const float* running_mean, const float* running_var,
                                        double eps, float* mean, float* invstd) {
  if (channels <= 0) return;
  statistics_from_running_kernel<<<vector_blocks(channels), kThreads, 0, ::pixgrad::cuda::current_stream()>>>(
      channels, running_mean, running_var, eps, mean, invstd);
  PIXGRAD_CUDA_CHECK_LAUNCH();
}

}  // namespace pixgrad::kernels::cuda
