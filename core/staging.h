// Copies between pageable host memory and a device through one pinned
// staging buffer, chunk by chunk. Plain C++: the CUDA backend
// (core/cuda_backend.cu) supplies the device side, the tests a simulated one.
//
// Why a lock for the whole copy: the device copies a chunk out of (or into)
// the staging buffer asynchronously, so the buffer belongs to one copy from
// its first chunk until the device has finished with its last. Two host
// threads copying at once (the data loader uploading a batch while the
// training step reads its losses back) would otherwise overwrite each
// other's chunks while the device is still reading them. They take turns
// instead; a copy is a few milliseconds at most.
//
// The device side is any object with
//   void copy_to_staging(void* staging, const void* device_source, size_t bytes);       queued
//   void copy_from_staging(void* device_destination, const void* staging, size_t bytes); queued
//   void wait();                          returns when every queued copy has finished
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>

namespace pixgrad {

class StagingBuffer {
 public:
  // `allocate` is called once, on the first copy, for `chunk_bytes` of
  // (pinned) host memory; the buffer is never freed (it lives as long as the
  // process, like the device's stream).
  StagingBuffer(size_t chunk_bytes, std::function<void*(size_t)> allocate)
      : chunk_bytes_(chunk_bytes), allocate_(std::move(allocate)) {
    if (chunk_bytes_ == 0) throw std::invalid_argument("StagingBuffer: the chunk size must be positive");
  }
  StagingBuffer(const StagingBuffer&) = delete;
  StagingBuffer& operator=(const StagingBuffer&) = delete;

  template <typename Device>
  void to_host(void* host_destination, const void* device_source, size_t bytes, Device& device) {
    const std::lock_guard<std::mutex> lock(mutex_);
    char* staging = buffer();
    settle_on_error(device, [&] {
      for (size_t done = 0; done < bytes; done += chunk_bytes_) {
        const size_t chunk = std::min(chunk_bytes_, bytes - done);
        device.copy_to_staging(staging, static_cast<const char*>(device_source) + done, chunk);
        device.wait();
        std::memcpy(static_cast<char*>(host_destination) + done, staging, chunk);
      }
    });
  }

  template <typename Device>
  void from_host(void* device_destination, const void* host_source, size_t bytes, Device& device) {
    const std::lock_guard<std::mutex> lock(mutex_);
    char* staging = buffer();
    settle_on_error(device, [&] {
      for (size_t done = 0; done < bytes; done += chunk_bytes_) {
        const size_t chunk = std::min(chunk_bytes_, bytes - done);
        // The previous chunk (this copy's, or the last copy's) must have
        // left the buffer before it is refilled.
        device.wait();
        std::memcpy(staging, static_cast<const char*>(host_source) + done, chunk);
        device.copy_from_staging(static_cast<char*>(device_destination) + done, staging, chunk);
      }
      device.wait();  // the buffer is free, and the data arrived, before the lock goes
    });
  }

  size_t chunk_bytes() const { return chunk_bytes_; }

 private:
  // Runs `copy`; if it throws, first waits for the device to finish with
  // the buffer (a queued chunk may still be reading or writing it), so that
  // the next copy cannot overwrite bytes in flight, then rethrows.
  template <typename Device, typename Copy>
  static void settle_on_error(Device& device, Copy&& copy) {
    try {
      copy();
    } catch (...) {
      try {
        device.wait();
      } catch (...) {
        // The copy's own error is the one to report.
      }
      throw;
    }
  }

  char* buffer() {
    if (!buffer_) buffer_ = static_cast<char*>(allocate_(chunk_bytes_));
    return buffer_;
  }

  std::mutex mutex_;
  const size_t chunk_bytes_;
  std::function<void*(size_t)> allocate_;
  char* buffer_ = nullptr;
};

}  // namespace pixgrad
