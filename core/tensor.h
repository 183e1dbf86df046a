// Tensor: a shared handle to a contiguous block of elements on one device,
// plus what autograd needs (requires_grad, the accumulated .grad, and the
// node that produced it). Copying a Tensor copies the handle, not the data,
// as in PyTorch.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include <pixgrad/core/device.h>
#include <pixgrad/core/dtype.h>
#include <pixgrad/core/generator.h>
#include <pixgrad/core/shape.h>
#include <pixgrad/core/storage.h>

namespace pixgrad {

struct Node;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // first element, counted in elements of dtype
  Shape shape;
  DType dtype = DType::Float32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated by backward() on leaves
  std::shared_ptr<Node> grad_fn;     // the op that produced this tensor, if recorded
};

class Tensor {
 public:
  Tensor() = default;  // undefined: holds nothing
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation ----
  static Tensor empty(const Shape& shape, Device device = Device::cpu(), DType dtype = DType::Float32);
  static Tensor zeros(const Shape& shape, Device device = Device::cpu(), DType dtype = DType::Float32);
  static Tensor ones(const Shape& shape, Device device = Device::cpu(), DType dtype = DType::Float32);
  static Tensor full(const Shape& shape, double value, Device device = Device::cpu(), DType dtype = DType::Float32);
  // Philox draws: the same (seed, offset) gives the same numbers on every device.
  static Tensor uniform(const Shape& shape, double low, double high, Generator& generator = default_generator(),
                        Device device = Device::cpu(), DType dtype = DType::Float32);
  static Tensor normal(const Shape& shape, double mean, double stddev, Generator& generator = default_generator(),
                       Device device = Device::cpu(), DType dtype = DType::Float32);
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape, Device device = Device::cpu());
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape, Device device = Device::cpu());
  static Tensor empty_like(const Tensor& other);
  static Tensor zeros_like(const Tensor& other);

  // ---- description ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t dimension) const;  // negative counts from the end
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  bool is_cpu() const { return device().is_cpu(); }
  bool is_cuda() const { return device().is_cuda(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * element_size(dtype()); }
  // "Tensor[1, 3, 8, 8] float32 cpu requires_grad (min -1.2, max 2.1, mean 0.03)"
  std::string summary() const;

  // ---- element access (raw pointers are device pointers for CUDA tensors) ----
  void* raw_data() const;
  template <typename T>
  T* data() const;  // checks that T matches dtype()
  std::vector<float> to_vector() const;            // any device, float32 or float64, as float
  std::vector<double> to_double_vector() const;    // any device, float32 or float64, as double
  double item() const;                             // the single element of a one-element tensor

  // ---- copies and views ----
  Tensor to(Device device) const;  // the same tensor when already there
  Tensor to(DType dtype) const;    // float32 <-> float64 conversion (copies)
  Tensor clone() const;            // a new storage, not recorded by autograd
  void copy_(const Tensor& source);  // same shape and dtype, any devices
  // Elements [start, start + length) along the batch (first) dimension; shares storage.
  Tensor batch_slice(int64_t start, int64_t length) const;
  // The same elements under another shape; shares storage. Recorded by autograd.
  Tensor reshape(const Shape& shape) const;
  // Dimensions start_dim.. joined into one: [N, C, H, W].flatten(1) is [N, C*H*W].
  Tensor flatten(int64_t start_dim = 0) const;

  // ---- autograd ----
  bool requires_grad() const;
  // Only leaves (tensors not produced by a recorded op) may be flagged.
  Tensor& set_requires_grad(bool requires_grad = true);
  bool is_leaf() const;
  Tensor grad() const;  // undefined until backward() reaches this leaf
  void set_grad(const Tensor& grad) const;
  void zero_grad() const;  // drops the accumulated gradient
  const std::shared_ptr<Node>& grad_fn() const;
  // Backpropagates from this tensor into the .grad of every leaf that needs
  // it; `gradient` may be omitted for one-element tensors. retain_graph keeps
  // the graph for another backward; create_graph records the gradients' own
  // graph (core/autograd.h), as in PyTorch.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false, bool create_graph = false) const;
  // A new handle to the same data, cut from the graph: the usual way to stop
  // gradients (Chainer's unchain_backward, without touching this handle).
  Tensor detach() const;
  // Cuts the graph above this tensor in place, like Chainer's
  // Variable.unchain_backward(): every op that already consumed it stops
  // backpropagating here.
  void unchain_backward() const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  const TensorImpl& checked_impl() const;
  std::shared_ptr<TensorImpl> impl_;
};

template <>
float* Tensor::data<float>() const;
template <>
double* Tensor::data<double>() const;

std::ostream& operator<<(std::ostream& out, const Tensor& tensor);

// Throws "op: ..." unless the tensor is defined and has at least one element.
void check_nonempty(const char* op, const Tensor& tensor, const char* role = "input");
// Throws unless a and b have the same shape, dtype and device.
void check_same(const char* op, const Tensor& a, const Tensor& b);

}  // namespace pixgrad
