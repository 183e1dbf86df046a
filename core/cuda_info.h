// Whether CUDA devices can be used by this process. Any error from the
// runtime (no driver, driver too old, no device) counts as "no GPU".
#pragma once

#include <cstdint>
#include <string>

#include <pixgrad/core/device.h>

namespace pixgrad {

// True when pixgrad was configured with the CUDA backend.
bool built_with_cuda();
// Number of usable CUDA devices (0 on any error); `reason` gets why there are none.
int cuda_device_count(std::string* reason = nullptr);
// Waits until `device` has finished all queued work (nothing to wait for on the CPU).
void synchronize(const Device& device);

// Makes CUDA device `index` current on this thread (cheap when it already is).
void cuda_activate(int index);

// The caching allocator's counters for one device: a steady-state training
// iteration must not change `device_mallocs` or `device_frees`.
struct CudaMemoryStats {
  int64_t device_mallocs = 0;   // cudaMalloc calls so far
  int64_t device_frees = 0;     // cudaFree calls so far
  int64_t bytes_in_use = 0;     // handed out to tensors
  int64_t bytes_cached = 0;     // freed by tensors, kept for reuse
  int64_t peak_bytes_in_use = 0;
};
CudaMemoryStats cuda_memory_stats(int index = 0);
// Returns the cached blocks of every device to the driver.
void cuda_empty_cache();

// pixgrad's own kernel launches so far, all devices (each launch site counts
// itself as it checks the launch); cuDNN's and cuBLAS's kernels are not
// counted. The difference over a training step is its launches per step.
int64_t cuda_kernel_launches();

}  // namespace pixgrad
