// Data-parallel gradients: after each rank's backward pass, every parameter's
// gradient is replaced by the mean over the ranks, so that every replica
// takes the same optimiser step and the parameters stay equal everywhere.
//
// Small gradients are packed into buckets of consecutive parameters (a few
// large collectives cost far less than one per tensor); a gradient of a
// quarter bucket or more is reduced in place. Both go in the parameters'
// order, which is the same on every rank, and the reduction itself is
// deterministic (see the communicators), so runs reproduce.
//
// A rank whose share of the global batch differs from the others' (the
// epoch's last batch may not split evenly) weights its loss by its share
// before backward (see models::Pix2Pix::set_loss_scale), so that the mean
// of the ranks' gradients is the gradient of the mean over all samples.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

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

  const Communicator& communicator() const { return *communicator_; }

 private:
  void reduce_bucket(const std::vector<Tensor>& gradients, const std::string& what) const;

  std::shared_ptr<Communicator> communicator_;
  size_t bucket_bytes_;
};

}  // namespace pixgrad::distributed
