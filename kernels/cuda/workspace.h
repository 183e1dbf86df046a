// Temporary device memory for a kernel's launches (partial sums, im2col
// columns, cuDNN's workspace), taken from pixgrad's caching allocator on the
// current device and given back when the Workspace goes out of scope. Giving
// it back right after queuing the launches that use it is safe: every launch
// and copy of a device runs on its one stream, so whatever reuses the memory
// is queued after them. Defined with the allocator, in core/cuda_backend.cu.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pixgrad::kernels::cuda {

class Workspace {
 public:
  Workspace() = default;  // holds nothing
  // At least `bytes` bytes (none for 0), aligned to 512 bytes.
  explicit Workspace(size_t bytes);
  ~Workspace();
  Workspace(Workspace&& other) noexcept;
  Workspace& operator=(Workspace&& other) noexcept;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  // `count` elements of T.
  template <typename T>
  static Workspace of(int64_t count) {
    return Workspace(static_cast<size_t>(count) * sizeof(T));
  }

  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  void* data() const { return data_; }

 private:
  void* data_ = nullptr;
  int device_ = -1;
};

}  // namespace pixgrad::kernels::cuda
