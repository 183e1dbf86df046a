// A block of bytes on one device, shared by every tensor that views it.
// Allocation and copies go through the device's backend so that core/ does
// not depend on the CUDA runtime.
#pragma once

#include <cstddef>
#include <memory>

#include <pixgrad/core/device.h>

namespace pixgrad {

// What a device must provide to hold tensors. The CPU backend is built in;
// the CUDA backend registers itself when pixgrad is built with CUDA.
struct DeviceBackend {
  void* (*allocate)(size_t bytes, int device_index);
  void (*deallocate)(void* pointer, int device_index);
  void (*copy_to_host)(void* host_destination, const void* source, size_t bytes, int device_index);
  void (*copy_from_host)(void* destination, const void* host_source, size_t bytes, int device_index);
  void (*copy_on_device)(void* destination, const void* source, size_t bytes, int device_index);
};

// The backend for `device`; throws a one-line error when it cannot hold
// tensors (not built with CUDA, no GPU, index out of range).
const DeviceBackend& backend_for(const Device& device);

class Storage {
 public:
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  const Device& device() const { return device_; }

  // Set on a buffer made to be joined (concat_slots in core/ops.h): concat
  // returns a view of such a buffer, where it would copy any other tensors.
  void mark_joinable() { joinable_ = true; }
  bool joinable() const { return joinable_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  bool joinable_ = false;
};

// Copies `bytes` between any two devices.
void copy_bytes(void* destination, const Device& destination_device, const void* source, const Device& source_device,
                size_t bytes);

}  // namespace pixgrad
