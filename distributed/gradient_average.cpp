#include <pixgrad/distributed/gradient_average.h>

#include <unordered_set>
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
  // All of them: one frozen now may be unfrozen before the pass, and one
  // that holds a gradient is averaged whether it is frozen or not.
  const std::vector<Tensor> watched = communicator_->size() > 1 ? parameters : std::vector<Tensor>();
  return std::make_unique<Overlap>(communicator_, watched, bucket_bytes_, what);
}

GradientAverage::Overlap::Overlap(std::shared_ptr<Communicator> communicator, const std::vector<Tensor>& parameters,
                                  size_t bucket_bytes, std::string what)
    : communicator_(std::move(communicator)),
      what_(std::move(what)),
      parameters_(parameters),
      ours_([&] {
        std::unordered_set<const TensorImpl*> ours;
        for (const Tensor& parameter : parameters) ours.insert(parameter.impl());
        return ours;
      }()),
      bucket_bytes_(bucket_bytes),
      watching_(GradientListener{[this](const std::vector<Tensor>& order) { check_pass(order); },
                                 [this](const std::vector<Tensor>& order) { pass_begins(order); },
                                 [this](const Tensor& leaf) { gradient_ready(leaf); }}) {}

// Dropped without finish() (an exception in the backward pass), each
// reduction started is dropped: the communicator keeps its memory safe.
GradientAverage::Overlap::~Overlap() = default;

// Buckets in the order the gradients become final: a large gradient alone,
// the others packed while they fit, one dtype and device to a bucket. A
// bucket of small gradients also closes once a bucket's worth of gradients,
// large ones included, has become final since its first one: the small
// gradients between large ones (a network's biases and norm scales) would
// otherwise wait for the end of the pass. The buckets are numbered in the
// order they close (a large gradient's may come before that of the small
// ones final before it), which is the order they start in.
void GradientAverage::Overlap::plan(const std::vector<Tensor>& order) {
  Bucket open;  // the bucket taking small gradients
  size_t open_bytes = 0;
  size_t open_span = 0;  // bytes of the gradients final since its first, its own included
  const auto add = [this](Bucket bucket) {
    for (const Tensor& parameter : bucket.parameters) bucket_of_[parameter.impl()] = buckets_.size();
    bucket.waiting = bucket.parameters.size();
    buckets_.push_back(std::move(bucket));
  };
  const auto close_open = [&] {
    add(std::move(open));
    open = Bucket();
    open_bytes = open_span = 0;
  };
  for (const Tensor& parameter : order) {
    if (parameter.nbytes() >= bucket_bytes_ / 4) {  // packing would only copy it twice more
      Bucket alone;
      alone.parameters.push_back(parameter);
      add(std::move(alone));
    } else {
      const bool fits = open.parameters.empty() || (parameter.dtype() == open.parameters.front().dtype() &&
                                                    parameter.device() == open.parameters.front().device() &&
                                                    open_bytes + parameter.nbytes() <= bucket_bytes_);
      if (!fits) close_open();
      open.parameters.push_back(parameter);
      open_bytes += parameter.nbytes();
    }
    if (open.parameters.empty()) continue;
    open_span += parameter.nbytes();
    if (open_span >= bucket_bytes_) close_open();
  }
  if (!open.parameters.empty()) add(std::move(open));
  planned_ = true;
}

// The parameters in reverse order, the order a backward pass would roughly
// finish them in: the plan without a pass to go by. A frozen one is in it
// too: an optimiser steps every parameter that holds a gradient, so one
// frozen after its gradient was made must be averaged like the others.
std::vector<Tensor> GradientAverage::Overlap::reversed_parameters() const {
  std::unordered_set<const TensorImpl*> seen;
  std::vector<Tensor> reversed;
  for (auto it = parameters_.rbegin(); it != parameters_.rend(); ++it)
    if (seen.insert(it->impl()).second) reversed.push_back(*it);  // each once, however often listed
  return reversed;
}

// Ours among the leaves a pass will finish, in its order.
std::vector<Tensor> GradientAverage::Overlap::reached_by(const std::vector<Tensor>& final_order) const {
  std::unordered_set<const TensorImpl*> seen;
  std::vector<Tensor> reached;
  for (const Tensor& leaf : final_order)
    if (ours_.count(leaf.impl()) && seen.insert(leaf.impl()).second) reached.push_back(leaf);
  return reached;
}

// A second pass would add to gradients whose reduction may have started.
void GradientAverage::Overlap::check_pass(const std::vector<Tensor>& final_order) const {
  if (finished_ || !planned_) return;
  PIXGRAD_CHECK(reached_by(final_order).empty(), "GradientAverage: ", what_,
                ": a second backward pass reaches the gradients being averaged; one during_backward() covers one "
                "pass (to accumulate over several, make it just before the last)");
}

// The pass's order for the parameters it reaches, then the others.
void GradientAverage::Overlap::pass_begins(const std::vector<Tensor>& final_order) {
  if (finished_ || planned_) return;
  std::vector<Tensor> order = reached_by(final_order);
  if (order.empty()) return;  // a pass that leaves our gradients alone
  std::unordered_set<const TensorImpl*> placed;
  for (const Tensor& parameter : order) placed.insert(parameter.impl());
  for (const Tensor& parameter : reversed_parameters())
    if (placed.insert(parameter.impl()).second) order.push_back(parameter);
  plan(order);
}

void GradientAverage::Overlap::gradient_ready(const Tensor& leaf) {
  if (!planned_ || finished_) return;
  const auto found = bucket_of_.find(leaf.impl());
  if (found == bucket_of_.end()) return;  // not one of ours (the other network's)
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
  if (!planned_) plan(reversed_parameters());
  while (next_ < buckets_.size()) start(buckets_[next_++]);
  for (Bucket& bucket : buckets_) write_means(bucket);
  finished_ = true;
}

}  // namespace pixgrad::distributed
