// BatchNorm2d, InstanceNorm2d and Dropout, over pixgrad::batch_norm and
// pixgrad::dropout. Affine weights start at one, biases at zero.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <pixgrad/core/ops.h>
#include <pixgrad/layers/module.h>

namespace pixgrad::distributed {
class Communicator;
}

namespace pixgrad::nn {

// The options of both norms, which differ only in their (PyTorch's) defaults:
// BatchNorm2d is affine and tracks running statistics, InstanceNorm2d neither.
template <bool kAffineAndTrackingByDefault>
class NormOptions {
 public:
  explicit NormOptions(int64_t num_features) : num_features_(num_features) {}
  PIXGRAD_ARG(int64_t, num_features);
  PIXGRAD_ARG(double, eps) = 1e-5;
  PIXGRAD_ARG(double, momentum) = 0.1;
  PIXGRAD_ARG(bool, affine) = kAffineAndTrackingByDefault;
  PIXGRAD_ARG(bool, track_running_stats) = kAffineAndTrackingByDefault;
};
using BatchNorm2dOptions = NormOptions<true>;
using InstanceNorm2dOptions = NormOptions<false>;

// The state both norms share: affine weight and bias [C] (ones and zeros)
// when affine, running_mean and running_var [C] buffers (zeros and ones)
// when tracking running statistics.
class NormBase : public Module {
 public:
  Tensor weight, bias;
  Tensor running_mean, running_var;

 protected:
  NormBase(std::string name, int64_t num_features, double eps, bool affine, bool track_running_stats);
};

// Per-channel statistics over the batch and the plane. Training uses (and,
// when tracked, updates) batch statistics; eval uses the running ones when
// tracked, batch statistics otherwise.
//
// Synchronised (synchronize_with set, layers/sync_batch_norm.h): the batch
// statistics are those of the global batch, every rank's share of it, and
// forward and backward are collectives. That holds only while all three are
// true: the module is in training mode, grad mode is enabled
// (grad_mode_enabled(), core/autograd.h), and the world has more than one
// rank. Otherwise forward is the plain one on this rank's batch alone. The
// rule exists because previews and evaluation run on rank 0 alone, under a
// NoGradGuard, possibly with the network in training mode (pix2pix's
// generator keeps batch statistics at test time): such a forward must not
// wait in a collective that the other ranks never enter. Every rank must
// therefore run the same synchronised forwards, in the same order.
class BatchNorm2d : public NormBase {
 public:
  explicit BatchNorm2d(const BatchNorm2dOptions& options);
  Tensor forward(const Tensor& input) override;
  // forward, then `after` (core/ops.h): fused into the normalisation's pass
  // unless the statistics are synchronised or a forward hook is installed,
  // when it runs as separate ops after the hook has seen the norm's output.
  // `out` as for batch_norm: written when fused, and the result is returned.
  // `input_moments` as for batch_norm (a convolution's output_moments):
  // used with batch statistics unless they are synchronised (then they are
  // ignored); otherwise checked whenever they are given.
  Tensor forward(const Tensor& input, const BatchNormEpilogue& after, const Tensor& out = Tensor(),
                 const Tensor& input_moments = Tensor());
  // Whether forward would use input moments now (batch statistics, not synchronised).
  bool uses_moments() const;

  // Whether forward now computes global statistics (the rule above).
  bool synchronizes() const;
  // Whether forward(input, after, out) now fuses `after` and writes `out`.
  bool fuses() const;

  BatchNorm2dOptions options;
  // The ranks to compute batch statistics over; null: this rank's batch alone.
  std::shared_ptr<distributed::Communicator> synchronize_with;
};

// Statistics per sample and channel, over the plane only. When tracking, the
// running statistics follow the batch average of the per-sample ones and
// replace them in eval, as in PyTorch.
class InstanceNorm2d : public NormBase {
 public:
  explicit InstanceNorm2d(const InstanceNorm2dOptions& options);
  Tensor forward(const Tensor& input) override;
  // As BatchNorm2d's: `after` fused unless a forward hook is installed.
  Tensor forward(const Tensor& input, const BatchNormEpilogue& after);

  InstanceNorm2dOptions options;

 private:
  Tensor normalize(const Tensor& input, const BatchNormEpilogue& after);
};

// Zeroes elements with probability p in training (scaling the rest by
// 1 / (1 - p)); the identity in eval.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& input) override;

  double p;
};

}  // namespace pixgrad::nn
