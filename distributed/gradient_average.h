// Data-parallel gradients: after each rank's backward pass, every parameter's
// gradient is replaced by the mean over the ranks, so that every replica
// takes the same optimiser step and the parameters stay equal everywhere.
//
// Small gradients are packed into buckets of consecutive parameters (a few
// large collectives cost far less than one per tensor); a gradient of a
// quarter bucket or more is reduced in place. Buckets go in the reverse of
// the parameters' order (the order a backward pass finishes them in, last
// layer first), which is the same on every rank, and the reduction itself
// is deterministic (see the communicators), so runs reproduce.
//
// The reduction can overlap the backward pass (during_backward): each bucket
// starts as soon as the backward pass has made its gradients final and the
// buckets before it have started, and the communicator runs it in the
// background where it can (NCCL, on a stream of its own) while the rest of
// the backward pass is queued. Either way the same buckets are reduced, so
// the results are the same.
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
#include <vector>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/tensor.h>
#include <pixgrad/distributed/communicator.h>

namespace pixgrad::distributed {

class GradientAverage {
 public:
  explicit GradientAverage(std::shared_ptr<Communicator> communicator, size_t bucket_bytes = size_t(32) << 20);

  // Replaces each parameter's .grad by its mean over the ranks. Parameters
  // without a gradient are left alone: every rank runs the same graph, so
  // they are the same on every rank.
  void operator()(const std::vector<Tensor>& parameters, const std::string& what) const;

  class Overlap;
  // The same, overlapping the backward pass that runs on this thread while
  // the returned object lives: buckets of `parameters` (those that require
  // a gradient) start as the pass makes their gradients final; finish()
  // starts the rest, waits for all and writes the means.
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

  void gradient_ready(const Tensor& leaf);
  void start_ready_buckets();
  void start(Bucket& bucket);
  void write_means(Bucket& bucket);

  std::shared_ptr<Communicator> communicator_;
  std::string what_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const TensorImpl*, size_t> bucket_of_;
  size_t next_ = 0;  // the first bucket not started
  bool finished_ = false;
  GradientReadyScope watching_;
};

}  // namespace pixgrad::distributed
