// Data-parallel gradients: after each rank's backward pass, every parameter's
// gradient is replaced by the mean over the ranks, so that every replica
// takes the same optimiser step and the parameters stay equal everywhere.
//
// Small gradients are packed into buckets (a few large collectives cost far
// less than one per tensor); a gradient of a quarter bucket or more, or one
// alone in its bucket, is reduced in place; a bucket of small gradients
// also closes once a bucket's worth of gradients has become final since its
// first. The buckets follow the order the gradients become final, and each
// starts once its gradients are final and the buckets before it have
// started:
//   - during_backward: the order the backward pass will finish them in,
//     which the engine gives as the pass begins (a function of the graph,
//     the same on every rank and in every step of the same shapes); the
//     communicator runs a started bucket in the background where it can
//     (NCCL, on a stream of its own) while the rest of the pass is queued;
//   - operator(), after the pass: the reverse of the parameters' order.
// Each rank starts the same buckets in the same order, and each reduction
// gives every rank the same bits, so runs reproduce. (The two ways may pack
// differently, and some backends' sums depend on an element's place in its
// bucket: compare runs made the same way.)
//
// A rank whose share of the global batch differs from the others' (the
// epoch's last batch may not split evenly) weights its loss by its share
// before backward (see models::Pix2Pix::set_loss_scale), so that the mean
// of the ranks' gradients is the gradient of the mean over all samples.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/tensor.h>
#include <pixgrad/distributed/communicator.h>

namespace pixgrad::distributed {

class GradientAverage {
 public:
  explicit GradientAverage(std::shared_ptr<Communicator> communicator, size_t bucket_bytes = size_t(32) << 20);

  // Replaces each parameter's .grad by its mean over the ranks, frozen ones
  // included (an optimiser steps every parameter that holds a gradient).
  // Parameters without a gradient are left alone: every rank runs the same
  // graph, so they are the same on every rank.
  void operator()(const std::vector<Tensor>& parameters, const std::string& what) const;

  class Overlap;
  // The same, overlapping the next backward pass on this thread: made just
  // before it, the returned object starts a bucket of `parameters` (one the
  // pass gives no gradient is reduced at finish() if it holds one, else left
  // alone) as soon
  // as the pass makes its gradients final, and finish(), after the pass,
  // starts the rest, waits for all and writes the means. One pass per
  // Overlap: to accumulate gradients over several, make it before the last
  // (a second pass reaching its gradients is an error). Every rank must
  // call finish(): dropped without it, the reductions started are left to
  // the communicator, and the other ranks wait for the rest until the
  // timeout. Several may be alive at once (one per network). `what` names
  // the gradients in a timeout message ("G's gradients").
  std::unique_ptr<Overlap> during_backward(const std::vector<Tensor>& parameters, const std::string& what) const;

  const Communicator& communicator() const { return *communicator_; }

 private:
  std::shared_ptr<Communicator> communicator_;
  size_t bucket_bytes_;
};

// The buckets of one network's gradients and their reductions.
class GradientAverage::Overlap {
 public:
  Overlap(std::shared_ptr<Communicator> communicator, const std::vector<Tensor>& parameters, size_t bucket_bytes,
          std::string what);
  ~Overlap();
  Overlap(const Overlap&) = delete;
  Overlap& operator=(const Overlap&) = delete;

  // Starts every bucket not started yet, in order, waits for them all and
  // writes the means into the gradients. Once only.
  void finish();

 private:
  struct Bucket {
    std::vector<Tensor> parameters;
    size_t waiting = 0;  // parameters whose gradients are not final yet
    Tensor reduced;      // the packed gradients, or the one gradient reduced in place
    std::unique_ptr<PendingAllReduce> pending;
  };

  void plan(const std::vector<Tensor>& order);
  std::vector<Tensor> reversed_parameters() const;
  std::vector<Tensor> reached_by(const std::vector<Tensor>& final_order) const;
  void check_pass(const std::vector<Tensor>& final_order) const;
  void pass_begins(const std::vector<Tensor>& final_order);
  void gradient_ready(const Tensor& leaf);
  void start_ready_buckets();
  void start(Bucket& bucket);
  void write_means(Bucket& bucket);

  std::shared_ptr<Communicator> communicator_;
  std::string what_;
  std::vector<Tensor> parameters_;
  std::unordered_set<const TensorImpl*> ours_;  // parameters_, for lookups
  size_t bucket_bytes_;
  std::vector<Bucket> buckets_;  // in the order they start
  std::unordered_map<const TensorImpl*, size_t> bucket_of_;
  size_t next_ = 0;  // the first bucket not started
  bool planned_ = false;
  bool finished_ = false;
  GradientReadyScope watching_;
};

}  // namespace pixgrad::distributed
