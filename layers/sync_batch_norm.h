// Synchronised batch norm, like PyTorch's SyncBatchNorm: in data-parallel
// training each rank holds a share of the global batch, and the batch
// statistics are computed over all of it, so that N ranks normalise exactly
// as one process holding the whole batch would (within float rounding).
//
// BatchNorm2d does this when its synchronize_with is set (see its header
// for when it applies); synchronize_batch_norm sets it on a whole network.
#pragma once

#include <cstddef>
#include <memory>

#include <pixgrad/core/tensor.h>
#include <pixgrad/distributed/communicator.h>
#include <pixgrad/layers/module.h>

namespace pixgrad::nn {

// Sets synchronize_with = `communicator` on `root`, when it is a
// BatchNorm2d, and on every BatchNorm2d below it; returns how many it set.
// A null communicator turns synchronisation off again.
size_t synchronize_batch_norm(Module& root, std::shared_ptr<distributed::Communicator> communicator);

// Training-mode batch_norm of `input` [N, C, ...] with per-channel
// statistics over the batches of every rank of `communicator`: mean and
// biased variance normalise, the running statistics (when defined) follow
// the mean and the unbiased variance with `momentum`, as batch_norm does.
// weight and bias [C] may be undefined.
//
// Composed of differentiable ops, so the gradients are those of the global
// batch: the input's gradient is that of the sum of every rank's loss, and
// weight and bias get this rank's share of it (summing them over ranks, as
// gradient averaging does, gives the whole batch's gradient).
//
// Collectives per call: one for the global element count (a host number,
// since the ranks' batches may differ), one for the sums and one for the
// squared deviations; backward adds one for each of the last two. Every rank
// must call it, in the same order as its other collectives.
Tensor sync_batch_norm(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, double momentum, double eps,
                       distributed::Communicator& communicator);

}  // namespace pixgrad::nn
