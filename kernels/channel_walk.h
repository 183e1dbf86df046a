// The walk over one channel's elements of an [N, C, S] tensor that the CUDA
// batch-norm kernels split into chunks, one chunk per block (kernels/cuda/
// batch_norm.cu, through for_each_pack_of_chunk in device_helpers.cuh).
// Written as a host-and-device function of explicit block and thread
// numbers, so that the host test (tests/test_channel_walk.cpp) plays every
// block and thread of a launch.
#pragma once

#include <cstdint>

#include <pixgrad/kernels/elementwise_ops.h>

namespace pixgrad::kernels {

// Channel c of x [N, C, S] as N * S / W packs of W floats (W divides S): pack
// j = n * plane_packs + i starts at float ((n * C + c) * plane_packs + i) * W.
struct ChannelPacks {
  int64_t batch, channels, plane_packs;
};

// Calls visit(pack) (its first float is x + pack * W) for the packs thread
// `thread` of `threads` takes in chunk `split` of `splits` of channel `c`:
// the chunk is packs [begin, end) of the channel, and the thread takes
// begin + thread, begin + thread + threads, ...
template <typename Visit>
PIXGRAD_HOST_DEVICE void for_each_pack_of_channel_chunk(const ChannelPacks& layout, int64_t c, int64_t split,
                                                        int64_t splits, int64_t thread, int64_t threads,
                                                        Visit&& visit) {
  const int64_t count = layout.batch * layout.plane_packs;
  const int64_t end = count * (split + 1) / splits;
  int64_t j = count * split / splits + thread;
  if (j >= end) return;
  // (n, i) of pack j, moved on by `threads` packs per step: step_i < plane_packs, so one carry at most.
  int64_t n = j / layout.plane_packs, i = j - n * layout.plane_packs;
  const int64_t step_n = threads / layout.plane_packs, step_i = threads - step_n * layout.plane_packs;
  for (; j < end; j += threads) {
    visit((n * layout.channels + c) * layout.plane_packs + i);
    n += step_n;
    i += step_i;
    if (i >= layout.plane_packs) {
      i -= layout.plane_packs;
      ++n;
    }
  }
}

}  // namespace pixgrad::kernels
