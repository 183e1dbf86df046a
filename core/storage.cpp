#include <pixgrad/core/storage.h>

#include <cstring>

#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/host_block_cache.h>

namespace pixgrad {

// Defined in core/cuda_backend.cu when built with CUDA.
#ifdef PIXGRAD_WITH_CUDA
const DeviceBackend& cuda_backend();
#endif

namespace {

void* host_allocate(size_t bytes, int) { return host_block_allocate(bytes); }
void host_deallocate(void* pointer, int) { host_block_free(pointer); }
void host_copy(void* destination, const void* source, size_t bytes, int) {
  if (bytes) std::memcpy(destination, source, bytes);
}

const DeviceBackend kHostBackend{host_allocate, host_deallocate, host_copy, host_copy, host_copy};

}  // namespace

const DeviceBackend& backend_for(const Device& device) {
  if (device.is_cpu()) return kHostBackend;
#ifdef PIXGRAD_WITH_CUDA
  std::string reason;
  const int count = cuda_device_count(&reason);
  PIXGRAD_CHECK(count > 0, "device ", device.str(), ": no usable CUDA device (", reason, ")");
  PIXGRAD_CHECK(device.index() >= 0 && device.index() < count, "device ", device.str(), ": only ", count,
                " CUDA device(s) present");
  return cuda_backend();
#else
  fail("device ", device.str(), ": pixgrad was built without CUDA (configure with -DPIXGRAD_CUDA=ON)");
#endif
}

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  data_ = backend_for(device).allocate(bytes, device.index());
}

Storage::~Storage() { backend_for(device_).deallocate(data_, device_.index()); }

void copy_bytes(void* destination, const Device& destination_device, const void* source, const Device& source_device,
                size_t bytes) {
  if (bytes == 0) return;
  if (destination_device.is_cpu() && source_device.is_cpu()) {
    std::memcpy(destination, source, bytes);
  } else if (destination_device.is_cpu()) {
    backend_for(source_device).copy_to_host(destination, source, bytes, source_device.index());
  } else if (source_device.is_cpu()) {
    backend_for(destination_device).copy_from_host(destination, source, bytes, destination_device.index());
  } else {
    PIXGRAD_CHECK(destination_device == source_device, "copy: from ", source_device.str(), " to ",
                  destination_device.str(), " is not supported (copy through the host)");
    backend_for(source_device).copy_on_device(destination, source, bytes, source_device.index());
  }
}

}  // namespace pixgrad
