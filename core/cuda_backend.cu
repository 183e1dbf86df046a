// Device storage for CUDA tensors: plain cudaMalloc / cudaMemcpy, every call
// checked. (The caching allocator and pinned staging replace this with the
// CUDA backend proper.)
#include <cuda_runtime.h>

#include <mutex>

#include "core/cuda_info.h"
#include "core/error.h"
#include "core/storage.h"

#define PIXGRAD_CUDA_CHECK(call)                                                                   \
  do {                                                                                             \
    const cudaError_t status_ = (call);                                                            \
    if (status_ != cudaSuccess)                                                                    \
      ::pixgrad::fail(__FILE__, ":", __LINE__, ": ", #call, " failed: ", cudaGetErrorString(status_)); \
  } while (0)

namespace pixgrad {

bool built_with_cuda() { return true; }

int cuda_device_count(std::string* reason) {
  // The answer cannot change during a run; ask the runtime once.
  static std::once_flag once;
  static int count = 0;
  static std::string why;
  std::call_once(once, [] {
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
      count = 0;
      why = cudaGetErrorString(status);
      cudaGetLastError();  // clear the sticky error so later queries start clean
    } else if (count == 0) {
      why = "no CUDA device found";
    }
  });
  if (reason) *reason = why;
  return count;
}

void synchronize(const Device& device) {
  if (!device.is_cuda()) return;
  PIXGRAD_CUDA_CHECK(cudaSetDevice(device.index()));
  PIXGRAD_CUDA_CHECK(cudaDeviceSynchronize());
}

namespace {

void* device_allocate(size_t bytes, int device_index) {
  void* pointer = nullptr;
  PIXGRAD_CUDA_CHECK(cudaSetDevice(device_index));
  PIXGRAD_CUDA_CHECK(cudaMalloc(&pointer, bytes == 0 ? 1 : bytes));
  return pointer;
}

void device_deallocate(void* pointer, int device_index) {
  // Destructors must not throw; a failed free at exit is not actionable.
  cudaSetDevice(device_index);
  cudaFree(pointer);
}

void device_copy_to_host(void* host_destination, const void* source, size_t bytes, int device_index) {
  PIXGRAD_CUDA_CHECK(cudaSetDevice(device_index));
  PIXGRAD_CUDA_CHECK(cudaMemcpy(host_destination, source, bytes, cudaMemcpyDeviceToHost));
}

void device_copy_from_host(void* destination, const void* host_source, size_t bytes, int device_index) {
  PIXGRAD_CUDA_CHECK(cudaSetDevice(device_index));
  PIXGRAD_CUDA_CHECK(cudaMemcpy(destination, host_source, bytes, cudaMemcpyHostToDevice));
}

void device_copy_on_device(void* destination, const void* source, size_t bytes, int device_index) {
  PIXGRAD_CUDA_CHECK(cudaSetDevice(device_index));
  PIXGRAD_CUDA_CHECK(cudaMemcpy(destination, source, bytes, cudaMemcpyDeviceToDevice));
}

}  // namespace

const DeviceBackend& cuda_backend() {
  static const DeviceBackend backend{device_allocate, device_deallocate, device_copy_to_host, device_copy_from_host,
                                     device_copy_on_device};
  return backend;
}

}  // namespace pixgrad
