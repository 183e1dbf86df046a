#include <pixgrad/layers/sync_batch_norm.h>

#include <vector>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/core/ops/internal.h>
#include <pixgrad/distributed/all_reduce.h>
#include <pixgrad/layers/normalization.h>

namespace pixgrad::nn {

namespace {

using distributed::all_reduce_sum;
using distributed::Communicator;

// [N, C, ...] viewed as [N, C, S]: the layout of the per-channel sums.
detail::ChannelGroups channels_of(const Tensor& x) {
  return {1, x.size(0), x.size(1), x.numel() / (x.size(0) * x.size(1))};
}

// Sums over batch and plane, per channel: [C].
Tensor channel_sum(const Tensor& x) { return detail::channel_sum(x, channels_of(x), {x.size(1)}); }

// A per-channel vector [C] repeated over the batch and plane of `like`.
Tensor per_channel(const Tensor& vector, const Tensor& like) {
  return detail::channel_broadcast(vector, channels_of(like), like.shape());
}

// Elements per channel over every rank's batch. All-reduced rather than
// taken as the local count times the number of ranks: the last batch of an
// epoch may not split evenly.
double global_count(const Tensor& input, Communicator& communicator) {
  std::vector<double> count{static_cast<double>(input.numel() / input.size(1))};
  communicator.all_reduce(count, distributed::ReduceOp::Sum, "BatchNorm2d's global batch size");
  return count[0];
}

// running = (1 - momentum) * running + momentum * statistic, in place.
void follow(const Tensor& running, const Tensor& statistic, double momentum) {
  Tensor target = running;
  target.copy_(add(mul(running, 1 - momentum), mul(statistic, momentum)));
}

}  // namespace

Tensor sync_batch_norm(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, double momentum, double eps, Communicator& communicator) {
  PIXGRAD_CHECK(input.defined() && input.dim() >= 2 && input.numel() > 0, "sync_batch_norm: input ",
                input.defined() ? shape_str(input.shape()) : "(undefined)", " needs to be a non-empty [N, C, ...]");
  PIXGRAD_CHECK(eps > 0, "sync_batch_norm: eps must be positive, got ", eps);
  const double count = global_count(input, communicator);
  // Decided on the global count, so every rank stops here or none does.
  PIXGRAD_CHECK(count > 1, "sync_batch_norm: input ", shape_str(input.shape()),
                " has one value per channel over all ranks; batch statistics need more");

  const Tensor mean = div(all_reduce_sum(channel_sum(input), communicator, "BatchNorm2d's batch mean"), count);
  // Two passes, as the batch_norm kernels make: the squared deviations from
  // the global mean, rather than E[x^2] - E[x]^2, which cancels badly.
  const Tensor centred = sub(input, per_channel(mean, input));
  const Tensor variance =
      div(all_reduce_sum(channel_sum(square(centred)), communicator, "BatchNorm2d's batch variance"), count);

  const Tensor one = Tensor::ones(variance.shape(), variance.device(), variance.dtype());
  const Tensor invstd = div(one, sqrt(add(variance, eps)));
  const Tensor scale = weight.defined() ? mul(weight, invstd) : invstd;
  Tensor output = mul(centred, per_channel(scale, input));
  if (bias.defined()) output = add(output, per_channel(bias, input));

  if (running_mean.defined()) {
    const NoGradGuard no_grad;
    follow(running_mean, mean, momentum);
    follow(running_var, mul(variance, count / (count - 1)), momentum);
  }
  return output;
}

size_t synchronize_batch_norm(Module& root, std::shared_ptr<distributed::Communicator> communicator) {
  size_t converted = 0;
  const auto convert = [&](Module& module) {
    if (auto* norm = dynamic_cast<BatchNorm2d*>(&module)) {
      norm->synchronize_with = communicator;
      ++converted;
    }
  };
  convert(root);
  for (const auto& named : root.named_modules()) convert(*named.second);
  return converted;
}

}  // namespace pixgrad::nn
