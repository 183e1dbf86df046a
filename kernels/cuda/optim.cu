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
#include <pixgrad/kernels/multi_tensor_adam.h>

namespace pixgrad::kernels::cuda {

namespace {

constexpr int kThreads = 256;

// Marks a non-finite gradient; a rare, racy store of the same value.
__device__ __forceinline__ void note_finite(float grad, float* nonfinite) {
  if (nonfinite != nullptr && !isfinite(grad)) *nonfinite = 1.0f;
}

template <int W>
__global__ void adam_kernel(AdamScalars<float> given, const AdamScalars<float>* scalars_at, float* param,
                            const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n, float* nonfinite) {
  const AdamScalars<float> s = scalars_at != nullptr ? *scalars_at : given;
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

// Every slot's tensor in one launch: block b updates chunk b - first_block of
// its slot (kernels/multi_tensor_adam.h, whose host model tests this walk).
// The slot is copied once into registers: read through a reference, its
// fields could be loaded again after every store through its pointers.
// Every device takes 4 KiB of kernel arguments.
static_assert(sizeof(AdamScalars<float>) + sizeof(void*) + sizeof(AdamTable) + sizeof(float*) <= 4096,
              "adam_many_kernel's arguments exceed 4 KiB");

// scalars_at (may be null): the step's scalars in device memory, read instead
// of `given` (a captured step's replays, core/replay_values.h).
__global__ void adam_many_kernel(AdamScalars<float> given, const AdamScalars<float>* scalars_at,
                                 const __grid_constant__ AdamTable table, float* nonfinite) {
  const AdamScalars<float> s = scalars_at != nullptr ? *scalars_at : given;
  const AdamSlot slot = table.slots[adam_slot_of_block(table.slots, table.count, blockIdx.x)];
  adam_walk_chunk(slot, blockIdx.x - slot.first_block, threadIdx.x, blockDim.x, [&](int64_t i, int elements) {
    if (elements == 4) {
      Pack<4> p = load<4>(slot.param + i), m = load<4>(slot.exp_avg + i), v = load<4>(slot.exp_avg_sq + i);
      const Pack<4> g = load<4>(slot.grad + i);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        note_finite(g.v[k], nonfinite);
        adam_element(s, p.v[k], g.v[k], m.v[k], v.v[k]);
      }
      store<4>(slot.param + i, p);
      store<4>(slot.exp_avg + i, m);
      store<4>(slot.exp_avg_sq + i, v);
    } else {
      note_finite(slot.grad[i], nonfinite);
      adam_element(s, slot.param[i], slot.grad[i], slot.exp_avg[i], slot.exp_avg_sq[i]);
    }
  });
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
                 int64_t n, float* nonfinite, const AdamScalars<float>* scalars_at) {
  if (n <= 0) return;
  const AdamScalars<float> scalars = adam_scalars<float>(s);  // the CPU's, formed the same way
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  if (adam_pack_width({param, grad, exp_avg, exp_avg_sq, n}) == 4)
    adam_kernel<4><<<::pixgrad::cuda::blocks_for((n + 3) / 4, kThreads), kThreads, 0, stream>>>(
        scalars, scalars_at, param, grad, exp_avg, exp_avg_sq, n, nonfinite);
  else
    adam_kernel<1><<<::pixgrad::cuda::blocks_for(n, kThreads), kThreads, 0, stream>>>(
        scalars, scalars_at, param, grad, exp_avg, exp_avg_sq, n, nonfinite);
  PIXGRAD_CUDA_CHECK_LAUNCH();
}

void adam_update_many(Gpu, const AdamStep& s, const std::vector<AdamTensor>& tensors, float* nonfinite,
                      const AdamScalars<float>* scalars_at) {
  const std::vector<AdamSlot> slots = adam_slots(tensors);
  if (slots.empty()) return;
  std::vector<int64_t> blocks;
  const std::vector<AdamTable> tables = adam_tables(slots, &blocks);
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  for (size_t i = 0; i < tables.size(); ++i) {
    PIXGRAD_CHECK(blocks[i] < (int64_t(1) << 31), "adam_update_many: ", blocks[i], " blocks is more than a grid holds");
    adam_many_kernel<<<static_cast<unsigned int>(blocks[i]), kThreads, 0, stream>>>(adam_scalars<float>(s),
                                                                                    scalars_at, tables[i], nonfinite);
    PIXGRAD_CUDA_CHECK_LAUNCH();
  }
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
