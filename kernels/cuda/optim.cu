// Fused optimizer steps: one grid-stride pass that reads the parameter, its
// gradient and its state once and writes them back once (memory-bound).
//
// Adam (kernels/cpu/adam.h): with g = grad + weight_decay * p,
//   m = beta1 * m + (1 - beta1) * g,  v = beta2 * v + (1 - beta2) * g * g,
//   p -= step_size * m / (sqrt(v) * v_scale + eps),
// where step_size and v_scale carry the bias corrections and the epsilon
// placement (PyTorch or Chainer). They are formed on the host in double and
// rounded to float exactly as the CPU does. SGD (kernels/cpu/sgd.h):
//   buf = momentum * buf + g,  p -= lr * buf   (p -= lr * g without momentum).
//
// Memory: float4 packs of every array when all are 16-byte aligned, else
// scalars. Every product that feeds a sum goes through __fmul_rn / __fadd_rn
// and the square root and division are the IEEE-rounded ones, so nvcc forms no
// FMA and a step gives the same bits as the CPU reference (baseline x86-64, no
// FMA): a GPU run and a CPU run from the same state stay identical.
#include <pixgrad/kernels/cuda/optim.h>

#include <cmath>

#include <pixgrad/kernels/cuda/device_helpers.cuh>
#include <pixgrad/kernels/cuda/runtime.cuh>

namespace pixgrad::kernels::cuda {

namespace {

constexpr int kThreads = 256;


bool aligned16(const void* pointer) { return reinterpret_cast<uintptr_t>(pointer) % 16 == 0; }

struct AdamScalars {
  float step_size, v_scale, beta1, beta2, one_minus_beta1, one_minus_beta2, eps, decay;
};

// Marks a non-finite gradient; a rare, racy store of the same value.
__device__ __forceinline__ void note_finite(float grad, float* nonfinite) {
  if (nonfinite != nullptr && !isfinite(grad)) *nonfinite = 1.0f;
}

__device__ __forceinline__ void adam_element(const AdamScalars& s, float& p, float grad, float& m, float& v) {
  const float g = __fadd_rn(grad, __fmul_rn(s.decay, p));
  m = __fadd_rn(__fmul_rn(s.beta1, m), __fmul_rn(s.one_minus_beta1, g));
  v = __fadd_rn(__fmul_rn(s.beta2, v), __fmul_rn(__fmul_rn(s.one_minus_beta2, g), g));
  const float denominator = __fadd_rn(__fmul_rn(__fsqrt_rn(v), s.v_scale), s.eps);
  p = __fsub_rn(p, __fdiv_rn(__fmul_rn(s.step_size, m), denominator));
}

template <int W>
__global__ void adam_kernel(AdamScalars s, float* param, const float* grad, float* exp_avg, float* exp_avg_sq,
                            int64_t n, float* nonfinite) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t packs = n / W;
  for (int64_t q = first; q < packs; q += stride) {
    const int64_t base = q * W;
    Pack<W> p = load<W>(param + base), m = load<W>(exp_avg + base), v = load<W>(exp_avg_sq + base);
    const Pack<W> g = load<W>(grad + base);
#pragma unroll
    for (int k = 0; k < W; ++k) {
      note_finite(g.v[k], nonfinite);
      adam_element(s, p.v[k], g.v[k], m.v[k], v.v[k]);
    }
    store<W>(param + base, p);
    store<W>(exp_avg + base, m);
    store<W>(exp_avg_sq + base, v);
  }
  if constexpr (W > 1) {
    const int64_t tail = packs * W + first;  // fewer than W elements, one per thread
    if (tail < n) {
      note_finite(grad[tail], nonfinite);
      adam_element(s, param[tail], grad[tail], exp_avg[tail], exp_avg_sq[tail]);
    }
  }
}

struct SgdScalars {
  float lr, momentum, decay;
};

template <bool kMomentum>
__device__ __forceinline__ void sgd_element(const SgdScalars& s, float& p, float grad, float& buffer) {
  if constexpr (kMomentum) {
    buffer = __fadd_rn(__fadd_rn(__fmul_rn(s.momentum, buffer), grad), __fmul_rn(s.decay, p));
    p = __fsub_rn(p, __fmul_rn(s.lr, buffer));
  } else {
    p = __fsub_rn(p, __fmul_rn(s.lr, __fadd_rn(grad, __fmul_rn(s.decay, p))));
  }
}

// Without momentum, `buffer` is null and never read.
template <int W, bool kMomentum>
__global__ void sgd_kernel(SgdScalars s, float* param, const float* grad, float* buffer, int64_t n,
                           float* nonfinite) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t packs = n / W;
  for (int64_t q = first; q < packs; q += stride) {
    const int64_t base = q * W;
    Pack<W> p = load<W>(param + base), b{};
    const Pack<W> g = load<W>(grad + base);
    if constexpr (kMomentum) b = load<W>(buffer + base);
#pragma unroll
    for (int k = 0; k < W; ++k) {
      note_finite(g.v[k], nonfinite);
      sgd_element<kMomentum>(s, p.v[k], g.v[k], b.v[k]);
    }
    store<W>(param + base, p);
    if constexpr (kMomentum) store<W>(buffer + base, b);
  }
  if constexpr (W > 1) {
    const int64_t tail = packs * W + first;
    if (tail < n) {
      float b = 0.0f;
      if constexpr (kMomentum) b = buffer[tail];
      note_finite(grad[tail], nonfinite);
      sgd_element<kMomentum>(s, param[tail], grad[tail], b);
      if constexpr (kMomentum) buffer[tail] = b;
    }
  }
}

template <bool kMomentum>
void launch_sgd(const SgdScalars& s, float* param, const float* grad, float* buffer, int64_t n, float* nonfinite) {
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  if (aligned16(param) && aligned16(grad) && aligned16(buffer))
    sgd_kernel<4, kMomentum><<<::pixgrad::cuda::blocks_for((n + 3) / 4, kThreads), kThreads, 0, stream>>>(
        s, param, grad, buffer, n, nonfinite);
  else
    sgd_kernel<1, kMomentum><<<::pixgrad::cuda::blocks_for(n, kThreads), kThreads, 0, stream>>>(
        s, param, grad, buffer, n, nonfinite);
  PIXGRAD_CUDA_CHECK_LAUNCH();
}

}  // namespace

void adam_update(Gpu, const AdamStep& s, float* param, const float* grad, float* exp_avg, float* exp_avg_sq,
                 int64_t n, float* nonfinite) {
  if (n <= 0) return;
  // The CPU's scalars, formed the same way (kernels/cpu/adam.cpp).
  const double t = static_cast<double>(s.step);
  const double correction1 = 1 - std::pow(s.beta1, t), correction2 = 1 - std::pow(s.beta2, t);
  const bool chainer = s.placement == EpsilonPlacement::Chainer;
  AdamScalars scalars;
  scalars.step_size = static_cast<float>(chainer ? s.lr * std::sqrt(correction2) / correction1 : s.lr / correction1);
  scalars.v_scale = static_cast<float>(chainer ? 1.0 : 1.0 / std::sqrt(correction2));
  scalars.beta1 = static_cast<float>(s.beta1);
  scalars.beta2 = static_cast<float>(s.beta2);
  scalars.one_minus_beta1 = static_cast<float>(1 - s.beta1);
  scalars.one_minus_beta2 = static_cast<float>(1 - s.beta2);
  scalars.eps = static_cast<float>(s.eps);
  scalars.decay = static_cast<float>(s.weight_decay);
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  if (aligned16(param) && aligned16(grad) && aligned16(exp_avg) && aligned16(exp_avg_sq))
    adam_kernel<4><<<::pixgrad::cuda::blocks_for((n + 3) / 4, kThreads), kThreads, 0, stream>>>(
        scalars, param, grad, exp_avg, exp_avg_sq, n, nonfinite);
  else
    adam_kernel<1><<<::pixgrad::cuda::blocks_for(n, kThreads), kThreads, 0, stream>>>(
        scalars, param, grad, exp_avg, exp_avg_sq, n, nonfinite);
  PIXGRAD_CUDA_CHECK_LAUNCH();
}

void sgd_update(Gpu, const SgdStep& s, float* param, const float* grad, float* momentum_buffer, int64_t n,
                float* nonfinite) {
  if (n <= 0) return;
  const SgdScalars scalars{static_cast<float>(s.lr), static_cast<float>(s.momentum),
                           static_cast<float>(s.weight_decay)};
  // As on the CPU: a null buffer or zero momentum is plain SGD.
  if (momentum_buffer == nullptr || s.momentum == 0)
    launch_sgd<false>(scalars, param, grad, nullptr, n, nonfinite);
  else
    launch_sgd<true>(scalars, param, grad, momentum_buffer, n, nonfinite);
}

}  // namespace pixgrad::kernels::cuda
