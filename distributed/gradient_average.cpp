#include <pixgrad/distributed/gradient_average.h>

#include <utility>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>

namespace pixgrad::distributed {

GradientAverage::GradientAverage(std::shared_ptr<Communicator> communicator, size_t bucket_bytes)
    : communicator_(std::move(communicator)), bucket_bytes_(bucket_bytes) {
  PIXGRAD_CHECK(communicator_ != nullptr, "GradientAverage: no communicator");
  PIXGRAD_CHECK(bucket_bytes_ > 0, "GradientAverage: the bucket size must be positive");
}

void GradientAverage::operator()(const std::vector<Tensor>& parameters, const std::string& what) const {
  if (communicator_->size() == 1) return;
  NoGradGuard no_grad;
  std::vector<Tensor> bucket;
  size_t bytes = 0;
  for (const Tensor& parameter : parameters) {
    Tensor gradient = parameter.grad();
    if (!gradient.defined()) continue;
    // A large gradient is reduced where it lies: packing would only copy it twice more.
    if (gradient.nbytes() >= bucket_bytes_ / 4) {
      communicator_->all_reduce(gradient, ReduceOp::Sum, what);
      mul_(gradient, 1.0 / communicator_->size());
      continue;
    }
    // A bucket holds one dtype on one device, up to bucket_bytes_.
    const bool fits = bucket.empty() || (gradient.dtype() == bucket.front().dtype() &&
                                         gradient.device() == bucket.front().device() &&
                                         bytes + gradient.nbytes() <= bucket_bytes_);
    if (!fits) {
      reduce_bucket(bucket, what);
      bucket.clear();
      bytes = 0;
    }
    bucket.push_back(gradient);
    bytes += gradient.nbytes();
  }
  if (!bucket.empty()) reduce_bucket(bucket, what);
}

void GradientAverage::reduce_bucket(const std::vector<Tensor>& gradients, const std::string& what) const {
  std::vector<Tensor> flat;
  flat.reserve(gradients.size());
  for (const Tensor& gradient : gradients) flat.push_back(gradient.reshape({gradient.numel()}));
  Tensor packed = flat.size() == 1 ? flat.front().clone() : concat(flat, 0);
  communicator_->all_reduce(packed, ReduceOp::Sum, what);
  mul_(packed, 1.0 / communicator_->size());
  int64_t offset = 0;
  for (Tensor gradient : gradients) {  // a handle: the copy writes into the gradient's storage
    gradient.copy_(packed.batch_slice(offset, gradient.numel()).reshape(gradient.shape()));
    offset += gradient.numel();
  }
}

}  // namespace pixgrad::distributed
