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
  std::vector<Tensor> with_gradients;
  for (const Tensor& parameter : parameters)
    if (parameter.grad().defined()) with_gradients.push_back(parameter);
  Overlap(communicator_, with_gradients, bucket_bytes_, what).finish();
}

std::unique_ptr<GradientAverage::Overlap> GradientAverage::during_backward(const std::vector<Tensor>& parameters,
                                                                          const std::string& what) const {
  std::vector<Tensor> trained;
  if (communicator_->size() > 1)  // a world of one has nothing to reduce
    for (const Tensor& parameter : parameters)
      if (parameter.requires_grad()) trained.push_back(parameter);
  return std::make_unique<Overlap>(communicator_, trained, bucket_bytes_, what);
}

// Buckets in the reverse of the parameters' order: a large gradient alone,
// the others packed while they fit, one dtype and device to a bucket.
GradientAverage::Overlap::Overlap(std::shared_ptr<Communicator> communicator, const std::vector<Tensor>& parameters,
                                  size_t bucket_bytes, std::string what)
    : communicator_(std::move(communicator)),
      what_(std::move(what)),
      watching_([this](const Tensor& leaf) { gradient_ready(leaf); }) {
  size_t bytes = 0;
  bool open = false;  // whether the last bucket takes more small gradients
  for (auto it = parameters.rbegin(); it != parameters.rend(); ++it) {
    const Tensor& parameter = *it;
    const bool large = parameter.nbytes() >= bucket_bytes / 4;  // packing would only copy it twice more
    const bool fits = open && parameter.dtype() == buckets_.back().parameters.front().dtype() &&
                      parameter.device() == buckets_.back().parameters.front().device() &&
                      bytes + parameter.nbytes() <= bucket_bytes;
    if (large || !fits) {
      buckets_.emplace_back();
      bytes = 0;
    }
    open = !large;
    buckets_.back().parameters.push_back(parameter);
    bytes += parameter.nbytes();
    bucket_of_[parameter.impl()] = buckets_.size() - 1;
  }
  for (Bucket& bucket : buckets_) bucket.waiting = bucket.parameters.size();
}

// Dropped without finish() (an exception in the backward pass), each
// reduction started is dropped: the communicator keeps its memory safe.
GradientAverage::Overlap::~Overlap() = default;

void GradientAverage::Overlap::gradient_ready(const Tensor& leaf) {
  const auto found = bucket_of_.find(leaf.impl());
  if (found == bucket_of_.end() || finished_) return;  // not one of ours (the other network's)
  Bucket& bucket = buckets_[found->second];
  PIXGRAD_CHECK(bucket.waiting > 0, "GradientAverage: ", what_, ": a gradient was final twice in one pass");
  --bucket.waiting;
  start_ready_buckets();
}

void GradientAverage::Overlap::start_ready_buckets() {
  while (next_ < buckets_.size() && buckets_[next_].waiting == 0) start(buckets_[next_++]);
}

void GradientAverage::Overlap::start(Bucket& bucket) {
  NoGradGuard no_grad;
  std::vector<Tensor> flat;
  for (const Tensor& parameter : bucket.parameters) {
    const Tensor gradient = parameter.grad();
    if (gradient.defined()) flat.push_back(gradient.reshape({gradient.numel()}));
  }
  if (flat.empty()) return;  // alike on every rank: they run the same graph
  const bool in_place = bucket.parameters.size() == 1;
  bucket.reduced = in_place ? bucket.parameters.front().grad() : flat.size() == 1 ? flat.front().clone() : concat(flat, 0);
  bucket.pending = communicator_->start_all_reduce(bucket.reduced, ReduceOp::Sum, what_);
}

void GradientAverage::Overlap::write_means(Bucket& bucket) {
  if (!bucket.pending) return;
  bucket.pending->wait();
  bucket.pending.reset();
  NoGradGuard no_grad;
  mul_(bucket.reduced, 1.0 / communicator_->size());
  if (bucket.parameters.size() == 1) return;  // reduced in place
  int64_t offset = 0;
  for (const Tensor& parameter : bucket.parameters) {
    Tensor gradient = parameter.grad();  // a handle: the copy writes into the gradient's storage
    if (!gradient.defined()) continue;
    gradient.copy_(bucket.reduced.batch_slice(offset, gradient.numel()).reshape(gradient.shape()));
    offset += gradient.numel();
  }
}

void GradientAverage::Overlap::finish() {
  PIXGRAD_CHECK(!finished_, "GradientAverage: ", what_, ": finish() called twice");
  while (next_ < buckets_.size()) start(buckets_[next_++]);
  for (Bucket& bucket : buckets_) write_means(bucket);
  finished_ = true;
}

}  // namespace pixgrad::distributed
