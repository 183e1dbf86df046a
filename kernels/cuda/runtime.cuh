// Shared by every CUDA source: error checking and the stream kernels run on.
// Every runtime call and every launch is checked; a failure raises
// pixgrad::Error with file:line and CUDA's error string.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include <pixgrad/core/error.h>

#define PIXGRAD_CUDA_CHECK(call)                                                                       \
  do {                                                                                                 \
    const cudaError_t pixgrad_status_ = (call);                                                        \
    if (pixgrad_status_ != cudaSuccess)                                                                \
      ::pixgrad::fail(__FILE__, ":", __LINE__, ": ", #call, " failed: ", cudaGetErrorString(pixgrad_status_)); \
  } while (0)

// After a <<<...>>> launch: configuration errors surface here, at the launch site.
// After every kernel launch: counts it (cuda_kernel_launches in
// core/cuda_info.h) and turns a launch error into pixgrad::Error.
#define PIXGRAD_CUDA_CHECK_LAUNCH()            \
  do {                                         \
    ::pixgrad::cuda::count_kernel_launch();    \
    PIXGRAD_CUDA_CHECK(cudaGetLastError());    \
  } while (0)

namespace pixgrad::cuda {

// The one stream of the current device (created on first use). All kernels
// and copies of that device are ordered on it, which is also what makes the
// caching allocator's reuse of freed blocks safe.
cudaStream_t current_stream();
void count_kernel_launch();
int current_device();

// The caching allocator's graph pools (core/cuda_backend.cu): from
// begin_graph_pool to end_graph_pool_capture, the device's allocations and
// frees go to a new pool, whose blocks nobody else gets until it is released.
int begin_graph_pool(int device);
void end_graph_pool_capture(int device);
void release_graph_pool(int device, int pool);

// Fails with "<what> sets <thing> up, which a CUDA graph capture cannot do"
// while the current stream is being captured: for the one-time set-up
// (device memory, library handles) that a capture cannot hold.
inline void refuse_set_up_in_capture(const char* what, const char* thing) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  PIXGRAD_CUDA_CHECK(cudaStreamIsCapturing(current_stream(), &capture));
  PIXGRAD_CHECK(capture == cudaStreamCaptureStatusNone, what, " sets ", thing,
                " up, which a CUDA graph capture cannot do; run the step once without capturing first");
}

// Blocks of `threads` covering n elements, capped for grid-stride loops.
inline unsigned int blocks_for(int64_t n, int threads = 256, int64_t cap = 65535 * 8) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned int>(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

}  // namespace pixgrad::cuda
