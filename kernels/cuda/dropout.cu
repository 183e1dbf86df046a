// Dropout masks: mask[i] = u_i >= float(p) ? float(1 / (1 - p)) : 0, with u_i
// uniform number i of the Philox stream at (seed, offset) (kernels/philox.h).
//
// Memory: element i uses word i % 4 of Philox block offset + i / 4, so each
// thread generates one block and writes its 4 elements, one float4 store when
// the mask is 16-byte aligned (a partial last group is stored element by
// element). Grid-stride over the groups.
//
// Bit-identity with kernels/cpu/dropout.cpp: the Philox rounds are integer
// arithmetic, the 24-bit-to-float conversion is exact, and the threshold and
// keep scale are rounded to float on the host exactly as the CPU does, so the
// comparison and the stored values are the same bits.
#include <pixgrad/kernels/cuda/dropout.h>

#include <pixgrad/kernels/philox.h>
#include <pixgrad/kernels/alignment.h>
#include <pixgrad/kernels/cuda/runtime.cuh>

namespace pixgrad::kernels::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void dropout_mask_kernel(float* mask, int64_t n, uint64_t seed, uint64_t offset,
                                    const uint64_t* offset_shift, float threshold, float keep_scale, bool aligned) {
  if (offset_shift != nullptr) offset += *offset_shift;
  const int64_t groups = (n + 3) / 4;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < groups; g += stride) {
    const philox::Block bits = philox::block(seed, offset + static_cast<uint64_t>(g));
    float kept[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) kept[k] = philox::dropout_factor(bits.word[k], threshold, keep_scale);
    const int64_t base = 4 * g;
    if (aligned && base + 4 <= n) {
      *reinterpret_cast<float4*>(mask + base) = make_float4(kept[0], kept[1], kept[2], kept[3]);
    } else {
      for (int k = 0; k < 4 && base + k < n; ++k) mask[base + k] = kept[k];
    }
  }
}

}  // namespace

void dropout_mask(Gpu, float* mask, int64_t n, double p, uint64_t seed, uint64_t offset,
                  const uint64_t* offset_shift) {
  if (n <= 0) return;
  const float keep_scale = static_cast<float>(1.0 / (1.0 - p));
  const float threshold = static_cast<float>(p);
  const bool aligned = aligned16(mask);
  dropout_mask_kernel<<<::pixgrad::cuda::blocks_for((n + 3) / 4, kThreads), kThreads, 0,
                        ::pixgrad::cuda::current_stream()>>>(mask, n, seed, offset, offset_shift, threshold,
                                                                      keep_scale, aligned);
  PIXGRAD_CUDA_CHECK_LAUNCH();
}

}  // namespace pixgrad::kernels::cuda
