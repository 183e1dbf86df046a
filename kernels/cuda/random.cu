// Philox fills: out[i] = float(low) + float(high - low) * u_i, and
// out[i] = float(mean) + float(stddev) * z_i, with u_i / z_i number i of the
// uniform / normal stream at (seed, offset) (kernels/philox.h).
//
// Memory: uniform element i uses word i % 4 of Philox block offset + i / 4, so
// each thread generates one block and writes 4 elements (a float4 store when
// aligned). Normal draws are evaluated per element with philox::normal: they
// fill weights once at initialisation, where a second Philox evaluation per
// pair of numbers does not matter.
//
// Agreement with kernels/cpu/random.cpp: the affine maps use __fmul_rn /
// __fadd_rn (no FMA contraction) and the same float casts, so uniform fills
// are bit-identical. Normal fills go through logf and cosf, whose CUDA and
// glibc versions may differ in the last bit or two (CUDA documents at most 1
// and 2 ulp), so they match to a few ulp, not bitwise.
#include <pixgrad/kernels/cuda/random.h>

#include <pixgrad/kernels/philox.h>
#include <pixgrad/kernels/alignment.h>
#include <pixgrad/kernels/cuda/runtime.cuh>

namespace pixgrad::kernels::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void fill_uniform_kernel(float* out, int64_t n, uint64_t seed, uint64_t offset, float low, float scale,
                                    bool aligned) {
  const int64_t groups = (n + 3) / 4;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < groups; g += stride) {
    const philox::Block bits = philox::block(seed, offset + static_cast<uint64_t>(g));
    float value[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) value[k] = __fadd_rn(low, __fmul_rn(scale, philox::to_unit_float(bits.word[k])));
    const int64_t base = 4 * g;
    if (aligned && base + 4 <= n) {
      *reinterpret_cast<float4*>(out + base) = make_float4(value[0], value[1], value[2], value[3]);
    } else {
      for (int k = 0; k < 4 && base + k < n; ++k) out[base + k] = value[k];
    }
  }
}

__global__ void fill_normal_kernel(float* out, int64_t n, uint64_t seed, uint64_t offset, float mean,
                                   float stddev) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = __fadd_rn(mean, __fmul_rn(stddev, philox::normal(seed, offset, static_cast<uint64_t>(i))));
}

}  // namespace

void fill_uniform(Gpu, float* out, int64_t n, uint64_t seed, uint64_t offset, double low, double high) {
  if (n <= 0) return;
  const bool aligned = aligned16(out);
  fill_uniform_kernel<<<::pixgrad::cuda::blocks_for((n + 3) / 4, kThreads), kThreads, 0,
                        ::pixgrad::cuda::current_stream()>>>(out, n, seed, offset, static_cast<float>(low),
                                                             static_cast<float>(high - low), aligned);
  PIXGRAD_CUDA_CHECK_LAUNCH();
}

void fill_normal(Gpu, float* out, int64_t n, uint64_t seed, uint64_t offset, double mean, double stddev) {
  if (n <= 0) return;
  fill_normal_kernel<<<::pixgrad::cuda::blocks_for(n, kThreads), kThreads, 0, ::pixgrad::cuda::current_stream()>>>(
      out, n, seed, offset, static_cast<float>(mean), static_cast<float>(stddev));
  PIXGRAD_CUDA_CHECK_LAUNCH();
}

}  // namespace pixgrad::kernels::cuda
