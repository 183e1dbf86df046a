// The handwritten convolution's bias gradient (kernels/cuda/
// conv2d_implicit_gemm.cu): grad_bias[c] = the sum of grad_output's channel
// c over the batch and the pixels, in double, in a fixed order. Written as
// host-and-device block and thread programs with the launch plan beside
// them, so that a host test (tests/test_cuda_thread_models.cpp) plays every
// block and thread of both launches on the CPU.
//
// Launch 1, grid (chunks, min(channels, 65535)) of kBiasThreads: block
// (x, y) sums pixels [x * chunk, (x + 1) * chunk) of channels y, y + gridDim.y,
// ... over the batch, each thread a strided share, then the block's shares
// in a fixed-shape tree; partial[c][x]. Launch 2: thread c adds channel c's
// partials in order.
#pragma once

#include <algorithm>
#include <cstdint>

#include <pixgrad/kernels/elementwise_ops.h>  // PIXGRAD_HOST_DEVICE, read_only

namespace pixgrad::kernels::cuda {

constexpr int kBiasThreads = 256;   // threads per block of launch 1
constexpr int kBiasFinishThreads = 256;

struct BiasPlan {
  int chunks, chunk;  // blocks per channel, and the pixels each sums
};

// About two blocks per multiprocessor, no chunk under 1024 pixels (where
// there are as many), every pixel in a chunk.
inline BiasPlan plan_bias(int64_t channels, int64_t pixels, int64_t sm_count) {
  const auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  const int64_t wanted = ceil_div(2 * sm_count, channels);
  const int64_t most = std::max<int64_t>(1, ceil_div(pixels, 1024));
  const int64_t chunk = ceil_div(pixels, std::clamp<int64_t>(wanted, 1, most));
  return {static_cast<int>(ceil_div(pixels, chunk)), static_cast<int>(chunk)};
}

// Block (block_x, block_y) of launch 1, in a grid of grid_x by grid_y
// blocks. `each(step)` runs step(thread) for the block's threads (on a GPU,
// the calling thread's own), `barrier()` is __syncthreads; `lanes` is the
// block's kBiasThreads doubles of shared memory.
template <typename Each, typename Barrier>
PIXGRAD_HOST_DEVICE void bias_partial_block(const float* __restrict__ grad_output, int batch, int channels,
                                            int pixels, int chunk, double* __restrict__ partial, double* lanes,
                                            int block_x, int grid_x, int block_y, int grid_y, Each&& each,
                                            Barrier&& barrier) {
  const int begin = block_x * chunk;
  const int end = pixels < begin + chunk ? pixels : begin + chunk;
  // The steps take the loop's values by value: a host model may run them
  // later, at the barrier.
  for (int c = block_y; c < channels; c += grid_y) {
    each([&, c](int thread) {
      double sum = 0.0;
      for (int b = 0; b < batch; ++b) {
        const float* plane = grad_output + (static_cast<int64_t>(b) * channels + c) * pixels;
        for (int i = begin + thread; i < end; i += kBiasThreads) sum += read_only(plane + i);
      }
      lanes[thread] = sum;
    });
    barrier();
    for (int half = kBiasThreads / 2; half > 0; half /= 2) {
      each([&, half](int thread) {
        if (thread < half) lanes[thread] += lanes[thread + half];
      });
      barrier();
    }
    each([&, c](int thread) {
      if (thread == 0) partial[static_cast<int64_t>(c) * grid_x + block_x] = lanes[0];
    });
    barrier();  // lanes is reused by the next channel
  }
}

// Thread `c` of launch 2 (threads past the channels do nothing).
PIXGRAD_HOST_DEVICE void bias_finish_thread(const double* __restrict__ partial, int channels, int chunks,
                                            float* __restrict__ grad_bias, int c) {
  if (c >= channels) return;
  double sum = 0.0;
  for (int i = 0; i < chunks; ++i) sum += partial[static_cast<int64_t>(c) * chunks + i];
  grad_bias[c] = static_cast<float>(sum);
}

}  // namespace pixgrad::kernels::cuda
