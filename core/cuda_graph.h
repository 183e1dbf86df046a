// CUDA graphs: a device's work captured once and launched again as a whole,
// with one launch instead of one per kernel; and copies between pageable host
// memory and the device that do not wait for the device.
//
// A graph repeats its kernels with the arguments and addresses they had at
// the capture:
// - what the captured work allocates comes from a pool private to the graph
//   (core/cuda_backend.cu), kept until the graph is destroyed, so the
//   addresses stay valid;
// - what must differ between launches is read from memory
//   (core/replay_values.h) or copied into fixed buffers before each launch
//   (PinnedTransfers);
// - the captured work may not wait for the device: copies to or from the
//   host and synchronize() raise an error while a capture is under way.
//
// In a build without CUDA these classes exist but their constructors raise
// a one-line error.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include <pixgrad/core/device.h>

namespace pixgrad {

class CudaGraph {
 public:
  explicit CudaGraph(Device device);
  // Waits for the device, then frees the graph and returns its pool.
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Captures the work `body` queues on the device's stream, which is
  // recorded, not run. Once only. If body throws, the capture is dropped and
  // the exception propagates. Other threads must not use the device
  // meanwhile: it has one stream, and their work would join the graph.
  void capture(const std::function<void()>& body);
  // Queues the captured work once more on the device's stream.
  void launch();
  // Kernels, copies and memsets in the graph.
  size_t node_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Copies between host memory and a device, queued on the device's stream
// without waiting for the device: each goes through a slot of pinned memory,
// and a slot is only reused once the copy that used it last has finished.
class PinnedTransfers {
 public:
  // `slots` slots of `slot_bytes` bytes each.
  PinnedTransfers(Device device, size_t slot_bytes, int slots = 3);
  ~PinnedTransfers();
  PinnedTransfers(const PinnedTransfers&) = delete;
  PinnedTransfers& operator=(const PinnedTransfers&) = delete;

  // Queues a copy of `bytes` host bytes to device memory (taken from `host`
  // before it returns).
  void upload(void* device_destination, const void* host, size_t bytes);
  // Queues a copy of `bytes` device bytes to the host; collect(ticket, ...)
  // waits for it and hands the bytes over.
  int download(const void* device_source, size_t bytes);
  void collect(int ticket, void* host, size_t bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pixgrad
