#include <pixgrad/core/tensor.h>

#include <algorithm>
#include <limits>
#include <cstring>
#include <iomanip>
#include <ostream>
#include <sstream>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/dispatch.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/core/replay_values.h>
#include <pixgrad/kernels/philox.h>
#include <pixgrad/kernels/cpu/random.h>
#include <pixgrad/kernels/cuda/random.h>

namespace pixgrad {

namespace {

// Random fills take their offset from the host at the call: a captured step
// would repeat the same numbers at every replay (dropout reads its offset
// from memory instead, core/replay_values.h).
void refuse_in_capture(const char* op) {
  PIXGRAD_CHECK(!CaptureSession::current(), op, " cannot run inside a captured step: its numbers would repeat at "
                                             "every replay");
}

std::shared_ptr<TensorImpl> allocate(const Shape& shape, Device device, DType dtype) {
  const int64_t count = shape_numel(shape);
  const size_t element = element_size(dtype);
  PIXGRAD_CHECK(static_cast<uint64_t>(count) <= std::numeric_limits<size_t>::max() / 2 / element, "tensor ",
                shape_str(shape), " of ", to_string(dtype), " is too large to allocate");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(count) * element, device);
  impl->shape = shape;
  impl->dtype = dtype;
  return impl;
}

// Builds a host tensor with `fill_host`, then moves it to `device`.
template <typename FillHost>
Tensor make_on(const Shape& shape, Device device, DType dtype, FillHost&& fill_host) {
  Tensor host(allocate(shape, Device::cpu(), dtype));
  fill_host(host);
  return host.to(device);
}

}  // namespace

// ---- creation ----

Tensor Tensor::empty(const Shape& shape, Device device, DType dtype) {
  PIXGRAD_CHECK(dtype == DType::Float32 || dtype == DType::Float64, "empty: dtype ", to_string(dtype),
                " is not supported yet");
  PIXGRAD_CHECK(dtype == DType::Float32 || device.is_cpu(), "empty: float64 tensors live on the cpu only");
  return Tensor(allocate(shape, device, dtype));
}

Tensor Tensor::zeros(const Shape& shape, Device device, DType dtype) { return full(shape, 0.0, device, dtype); }
Tensor Tensor::ones(const Shape& shape, Device device, DType dtype) { return full(shape, 1.0, device, dtype); }

Tensor Tensor::full(const Shape& shape, double value, Device device, DType dtype) {
  Tensor result = empty(shape, device, dtype);
  fill_(result, value);
  return result;
}

Tensor Tensor::uniform(const Shape& shape, double low, double high, Generator& generator, Device device,
                       DType dtype) {
  empty({0}, device, dtype);  // validates device and dtype before consuming random numbers
  refuse_in_capture("Tensor::uniform");
  const int64_t count = shape_numel(shape);
  const uint64_t offset = generator.reserve(philox::uniform_blocks(count));
  Tensor result = empty(shape, device, dtype);
  run_kernel("uniform", result, [&](auto on, auto zero) {
    fill_uniform(on, result.data<decltype(zero)>(), count, generator.seed(), offset, low, high);
  });
  return result;
}

Tensor Tensor::normal(const Shape& shape, double mean, double stddev, Generator& generator, Device device,
                      DType dtype) {
  empty({0}, device, dtype);
  refuse_in_capture("Tensor::normal");
  const int64_t count = shape_numel(shape);
  const uint64_t offset = generator.reserve(philox::normal_blocks(count));
  Tensor result = empty(shape, device, dtype);
  run_kernel("normal", result, [&](auto on, auto zero) {
    fill_normal(on, result.data<decltype(zero)>(), count, generator.seed(), offset, mean, stddev);
  });
  return result;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  PIXGRAD_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
                " values do not fill shape ", shape_str(shape));
  return make_on(shape, device, DType::Float32,
                 [&](Tensor& host) { std::copy(values.begin(), values.end(), host.data<float>()); });
}

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, Device device) {
  PIXGRAD_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
                " values do not fill shape ", shape_str(shape));
  return make_on(shape, device, DType::Float64,
                 [&](Tensor& host) { std::copy(values.begin(), values.end(), host.data<double>()); });
}

Tensor Tensor::empty_like(const Tensor& other) { return empty(other.shape(), other.device(), other.dtype()); }
Tensor Tensor::zeros_like(const Tensor& other) { return zeros(other.shape(), other.device(), other.dtype()); }

// ---- description ----

const TensorImpl& Tensor::checked_impl() const {
  PIXGRAD_CHECK(impl_ != nullptr, "tensor: use of an undefined tensor");
  return *impl_;
}

const Shape& Tensor::shape() const { return checked_impl().shape; }

int64_t Tensor::size(int64_t dimension) const {
  const int64_t rank = dim();
  const int64_t index = dimension < 0 ? dimension + rank : dimension;
  PIXGRAD_CHECK(index >= 0 && index < rank, "size: dimension ", dimension, " out of range for shape ",
                shape_str(shape()));
  return shape()[static_cast<size_t>(index)];
}

int64_t Tensor::numel() const { return shape_numel(shape()); }
DType Tensor::dtype() const { return checked_impl().dtype; }
Device Tensor::device() const { return checked_impl().storage->device(); }

std::string Tensor::summary() const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream out;
  out << "Tensor" << shape_str(shape()) << " " << to_string(dtype()) << " " << device().str();
  if (requires_grad()) out << " requires_grad";
  if (numel() > 0) {
    const std::vector<double> values = to_double_vector();
    double low = values[0], high = values[0], total = 0;
    for (double v : values) {
      low = std::min(low, v);
      high = std::max(high, v);
      total += v;
    }
    out << std::setprecision(4) << " (min " << low << ", max " << high << ", mean "
        << total / static_cast<double>(values.size()) << ")";
  }
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& tensor) { return out << tensor.summary(); }

// ---- element access ----

void* Tensor::raw_data() const {
  const TensorImpl& impl = checked_impl();
  return static_cast<char*>(impl.storage->data()) + impl.offset * static_cast<int64_t>(element_size(impl.dtype));
}

template <>
float* Tensor::data<float>() const {
  PIXGRAD_CHECK(dtype() == DType::Float32, "data<float>: tensor is ", to_string(dtype()));
  return static_cast<float*>(raw_data());
}

template <>
double* Tensor::data<double>() const {
  PIXGRAD_CHECK(dtype() == DType::Float64, "data<double>: tensor is ", to_string(dtype()));
  return static_cast<double*>(raw_data());
}

std::vector<double> Tensor::to_double_vector() const {
  PIXGRAD_CHECK(!CaptureSession::current(), "reading a tensor ", shape_str(shape()),
                " on the host inside a captured step: its values are not computed until the step is replayed");
  const Tensor host = to(Device::cpu());
  return dispatch_floating(dtype(), "to_double_vector", [&](auto zero) {
    const auto* values = host.data<decltype(zero)>();
    return std::vector<double>(values, values + numel());
  });
}

std::vector<float> Tensor::to_vector() const {
  const std::vector<double> values = to_double_vector();
  return std::vector<float>(values.begin(), values.end());
}

double Tensor::item() const {
  PIXGRAD_CHECK(defined() && numel() == 1, "item: tensor ", defined() ? shape_str(shape()) : "(undefined)",
                " does not have exactly one element");
  return to_double_vector()[0];
}

// ---- copies and views ----

Tensor Tensor::to(Device target) const {
  if (device() == target) return *this;
  Tensor result = empty(shape(), target, dtype());
  result.copy_(*this);
  return result;
}

Tensor Tensor::to(DType target) const {
  if (dtype() == target) return *this;
  PIXGRAD_CHECK(is_cpu(), "to(dtype): converting ", to_string(dtype()), " to ", to_string(target), " needs a cpu tensor, not ",
                device().str(), " (float64 lives on the cpu only)");
  Tensor result = empty(shape(), device(), target);
  const int64_t count = numel();
  dispatch_floating(dtype(), "to(dtype)", [&](auto from) {
    dispatch_floating(target, "to(dtype)", [&](auto into) {
      using From = decltype(from);
      using Into = decltype(into);
      const From* source = data<From>();
      Into* destination = result.data<Into>();
      for (int64_t i = 0; i < count; ++i) destination[i] = static_cast<Into>(source[i]);
    });
  });
  return result;
}

Tensor Tensor::clone() const {
  Tensor result = empty(shape(), device(), dtype());
  result.copy_(*this);
  return result;
}

void Tensor::copy_(const Tensor& source) {
  PIXGRAD_CHECK(source.defined() && defined(), "copy_: undefined tensor");
  PIXGRAD_CHECK(source.shape() == shape() && source.dtype() == dtype(), "copy_: cannot copy ",
                shape_str(source.shape()), " ", to_string(source.dtype()), " into ", shape_str(shape()), " ",
                to_string(dtype()));
  copy_bytes(raw_data(), device(), source.raw_data(), source.device(), nbytes());
}

Tensor Tensor::batch_slice(int64_t start, int64_t length) const {
  PIXGRAD_CHECK(dim() >= 1, "batch_slice: tensor of shape ", shape_str(shape()), " has no batch dimension");
  PIXGRAD_CHECK(start >= 0 && length >= 0 && start + length <= shape()[0], "batch_slice: [", start, ", ",
                start + length, ") out of range for shape ", shape_str(shape()));
  auto view = std::make_shared<TensorImpl>();
  view->storage = impl_->storage;
  view->shape = shape();
  view->shape[0] = length;
  view->dtype = dtype();
  const int64_t per_item = shape()[0] == 0 ? 0 : numel() / shape()[0];
  view->offset = impl_->offset + start * per_item;
  Tensor result(view);
  const Shape full_shape = shape();
  const int64_t first = start * per_item;
  // The backward copies raw bytes: first-order only.
  return record(
      "batch_slice", result, {*this},
      [full_shape, first](const Tensor& grad, const BackwardContext&) {
        Tensor whole = Tensor::zeros(full_shape, grad.device(), grad.dtype());
        const int64_t span = grad.numel() * static_cast<int64_t>(element_size(grad.dtype()));
        copy_bytes(static_cast<char*>(whole.raw_data()) + first * static_cast<int64_t>(element_size(grad.dtype())),
                   whole.device(), grad.raw_data(), grad.device(), static_cast<size_t>(span));
        return std::vector<Tensor>{whole};
      },
      {});
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  PIXGRAD_CHECK(shape_numel(new_shape) == numel(), "reshape: cannot view ", shape_str(shape()), " as ",
                shape_str(new_shape));
  auto view = std::make_shared<TensorImpl>(*impl_);
  view->shape = new_shape;
  view->requires_grad = false;
  view->grad.reset();
  view->grad_fn.reset();
  const Shape old_shape = shape();
  return record_differentiable("reshape", Tensor(view), {*this}, [old_shape](const Tensor& grad, const BackwardContext&) {
    return std::vector<Tensor>{grad.reshape(old_shape)};
  });
}

Tensor Tensor::flatten(int64_t start_dim) const {
  const int64_t rank = dim();
  PIXGRAD_CHECK(start_dim >= 0 && start_dim < std::max<int64_t>(rank, 1), "flatten: start_dim ", start_dim,
                " out of range for shape ", shape_str(shape()));
  Shape flat(shape().begin(), shape().begin() + std::min(start_dim, rank));
  int64_t rest = 1;
  for (int64_t d = start_dim; d < rank; ++d) rest *= shape()[d];
  flat.push_back(rest);
  return reshape(flat);
}

// ---- autograd ----

bool Tensor::requires_grad() const { return checked_impl().requires_grad; }

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  PIXGRAD_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can be flagged (this one was produced by '",
                impl_->grad_fn->op, "')");
  PIXGRAD_CHECK(!requires_grad || dtype() == DType::Float32 || dtype() == DType::Float64,
                "set_requires_grad: gradients need a floating dtype");
  impl_->requires_grad = requires_grad;
  return *this;
}

bool Tensor::is_leaf() const { return checked_impl().grad_fn == nullptr; }

Tensor Tensor::grad() const {
  const TensorImpl& impl = checked_impl();
  return impl.grad ? Tensor(impl.grad) : Tensor();
}

void Tensor::set_grad(const Tensor& grad) const {
  checked_impl();
  if (grad.defined()) check_same("set_grad", grad, *this);
  impl_->grad = grad.impl_ptr();
}

void Tensor::zero_grad() const { checked_impl(), impl_->grad.reset(); }

const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked_impl().grad_fn; }

void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  run_backward(*this, gradient, retain_graph, create_graph);
}

void Tensor::unchain_backward() const {
  checked_impl();
  impl_->grad_fn.reset();
  impl_->requires_grad = false;
}

Tensor Tensor::detach() const {
  auto view = std::make_shared<TensorImpl>();
  view->storage = checked_impl().storage;
  view->offset = impl_->offset;
  view->shape = impl_->shape;
  view->dtype = impl_->dtype;
  return Tensor(view);
}

// ---- checks shared by the ops ----

void check_nonempty(const char* op, const Tensor& tensor, const char* role) {
  PIXGRAD_CHECK(tensor.defined(), op, ": ", role, " is undefined");
  PIXGRAD_CHECK(tensor.numel() > 0, op, ": ", role, " of shape ", shape_str(tensor.shape()), " is empty");
}

void check_same(const char* op, const Tensor& a, const Tensor& b) {
  PIXGRAD_CHECK(a.defined() && b.defined(), op, ": undefined operand");
  PIXGRAD_CHECK(a.shape() == b.shape(), op, ": shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
                " differ");
  PIXGRAD_CHECK(a.dtype() == b.dtype(), op, ": dtypes ", to_string(a.dtype()), " and ", to_string(b.dtype()),
                " differ (shapes ", shape_str(a.shape()), ")");
  PIXGRAD_CHECK(a.device() == b.device(), op, ": devices ", a.device().str(), " and ", b.device().str(),
                " differ (shapes ", shape_str(a.shape()), ")");
}

}  // namespace pixgrad
