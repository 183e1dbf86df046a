// Device-side building blocks shared by the kernel families: vector packs of
// W floats (128-bit loads and stores for W = 4 when the caller has checked
// alignment), the warp-shuffle sum, and the walk over one channel's elements
// of an [N, C, S] tensor that per-channel reductions split into chunks.
#pragma once

#include <cstdint>

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

// Channel c of x [N, C, S] as N * S / W packs of W floats (W divides S): pack
// j = n * plane_packs + i starts at float ((n * C + c) * plane_packs + i) * W.
struct ChannelPacks {
  int64_t batch, channels, plane_packs;
};

// Calls visit(pack) (its first float is x + pack * W) for this thread's packs
// of chunk blockIdx.y (of gridDim.y) of channel blockIdx.x: the chunk is packs
// [begin, end) of the channel and thread t takes begin + t, begin + t + blockDim.x, ...
template <typename Visit>
__device__ __forceinline__ void for_each_pack_of_chunk(const ChannelPacks& layout, Visit visit) {
  const int64_t c = blockIdx.x, split = blockIdx.y, splits = gridDim.y;
  const int64_t count = layout.batch * layout.plane_packs;
  const int64_t end = count * (split + 1) / splits;
  int64_t j = count * split / splits + threadIdx.x;
  if (j >= end) return;
  // (n, i) of pack j, moved on by blockDim.x packs per step: step_i < plane_packs, so one carry at most.
  int64_t n = j / layout.plane_packs, i = j - n * layout.plane_packs;
  const int64_t step_n = blockDim.x / layout.plane_packs, step_i = blockDim.x - step_n * layout.plane_packs;
  for (; j < end; j += blockDim.x) {
    visit((n * layout.channels + c) * layout.plane_packs + i);
    n += step_n;
    i += step_i;
    if (i >= layout.plane_packs) {
      i -= layout.plane_packs;
      ++n;
    }
  }
}

}  // namespace pixgrad::kernels::cuda
