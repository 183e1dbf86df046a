// Where a tensor's storage lives: the host, or CUDA device N.
#pragma once

#include <string>

namespace pixgrad {

class Device {
 public:
  enum class Type { CPU, CUDA };

  constexpr Device() = default;
  constexpr Device(Type type, int index) : type_(type), index_(index) {}

  static constexpr Device cpu() { return Device(Type::CPU, 0); }
  static constexpr Device cuda(int index = 0) { return Device(Type::CUDA, index); }
  // Parses "cpu", "cuda", "cuda:N", or "auto" (default_device()); throws
  // pixgrad::Error otherwise.
  static Device parse(const std::string& text);

  Type type() const { return type_; }
  int index() const { return index_; }
  bool is_cpu() const { return type_ == Type::CPU; }
  bool is_cuda() const { return type_ == Type::CUDA; }
  std::string str() const;

  bool operator==(const Device& other) const { return type_ == other.type_ && index_ == other.index_; }
  bool operator!=(const Device& other) const { return !(*this == other); }

 private:
  Type type_ = Type::CPU;
  int index_ = 0;
};

// Whether this process can run on a CUDA device: pixgrad was built with the
// CUDA backend and the runtime finds a device. Any error from the runtime
// (no driver, driver too old, no device) counts as "no GPU". Like
// torch::cuda::is_available().
bool cuda_is_available();
// The first CUDA device when cuda_is_available(), else the CPU.
Device default_device();

}  // namespace pixgrad
