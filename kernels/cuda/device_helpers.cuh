// Device-side building blocks shared by the kernel families: vector packs of
// W floats (128-bit loads and stores for W = 4 when the caller has checked
// alignment), the warp-shuffle sum, and the walk over one channel's elements
// of an [N, C, S] tensor that per-channel reductions split into chunks.
#pragma once

#include <cstdint>

#include <pixgrad/kernels/channel_walk.h>

namespace pixgrad::kernels::cuda {

template <int W>
struct alignas(sizeof(float) * W) Pack {
  float v[W];
};

template <int W>
__device__ __forceinline__ Pack<W> load(const float* p) {
  return *reinterpret_cast<const Pack<W>*>(p);
}

template <int W>
__device__ __forceinline__ void store(float* p, const Pack<W>& value) {
  *reinterpret_cast<Pack<W>*>(p) = value;
}

// The sum over the warp, valid in lane 0.
__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

using kernels::ChannelPacks;

// for_each_pack_of_channel_chunk (kernels/channel_walk.h) for this thread:
// chunk blockIdx.y of gridDim.y of channel blockIdx.x, blockDim.x threads.
template <typename Visit>
__device__ __forceinline__ void for_each_pack_of_chunk(const ChannelPacks& layout, Visit visit) {
  for_each_pack_of_channel_chunk(layout, blockIdx.x, blockIdx.y, gridDim.y, threadIdx.x, blockDim.x, visit);
}

}  // namespace pixgrad::kernels::cuda
