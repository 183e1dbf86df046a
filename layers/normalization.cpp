#include <pixgrad/layers/normalization.h>

#include <utility>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/distributed/communicator.h>
#include <pixgrad/layers/forward_hook.h>
#include <pixgrad/layers/sync_batch_norm.h>

namespace pixgrad::nn {

namespace {

void check_input(const char* module, const Tensor& input, int64_t channels) {
  PIXGRAD_CHECK(input.defined() && input.dim() == 4 && input.size(1) == channels, module, ": expected input [N, ",
                channels, ", H, W], got ", input.defined() ? shape_str(input.shape()) : "(undefined)");
}

// `vector` [C] repeated n times, [n * C]; differentiable (the copies' gradients sum).
Tensor tile(const Tensor& vector, int64_t n) {
  if (!vector.defined()) return Tensor();
  return concat(std::vector<Tensor>(static_cast<size_t>(n), vector), 0);
}

// running[c] = mean over i of tiled[i * C + c].
void average_tiles(const Tensor& tiled, const Tensor& running) {
  const int64_t c = running.numel(), n = tiled.numel() / c;
  const std::vector<double> values = tiled.to_double_vector();
  std::vector<double> average(static_cast<size_t>(c), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < c; ++j) average[j] += values[i * c + j] / static_cast<double>(n);
  Tensor target = running;
  target.copy_(Tensor::from_vector(average, {c}).to(running.dtype()));
}

}  // namespace

NormBase::NormBase(std::string name, int64_t num_features, double eps, bool affine, bool track_running_stats)
    : Module(std::move(name)) {
  PIXGRAD_CHECK(num_features > 0 && eps > 0, this->name(), ": invalid options (num_features ", num_features, ", eps ",
                eps, ")");
  if (affine) {
    weight = register_parameter("weight", Tensor::ones({num_features}));
    bias = register_parameter("bias", Tensor::zeros({num_features}));
  }
  if (track_running_stats) {
    running_mean = register_buffer("running_mean", Tensor::zeros({num_features}));
    running_var = register_buffer("running_var", Tensor::ones({num_features}));
  }
}

BatchNorm2d::BatchNorm2d(const BatchNorm2dOptions& o)
    : NormBase("BatchNorm2d", o.num_features(), o.eps(), o.affine(), o.track_running_stats()), options(o) {}

Tensor BatchNorm2d::forward(const Tensor& input) { return forward(input, BatchNormEpilogue{}); }

Tensor BatchNorm2d::forward(const Tensor& input, const BatchNormEpilogue& after, const Tensor& out,
                            const Tensor& input_moments) {
  check_input("BatchNorm2d", input, options.num_features());
  const BatchNormParams params{is_training(), options.momentum(), options.eps()};
  if (fuses()) return batch_norm(input, weight, bias, running_mean, running_var, params, after, out, input_moments);
  const Tensor output = synchronizes() ? sync_batch_norm(input, weight, bias, running_mean, running_var,
                                                         options.momentum(), options.eps(), *synchronize_with)
                                       : batch_norm(input, weight, bias, running_mean, running_var, params, {},
                                                    Tensor(), input_moments);
  return apply_epilogue(apply_forward_hook(*this, input, output), after, is_training());
}

bool BatchNorm2d::uses_moments() const {
  // batch_norm's rule for batch statistics: training, or no running ones.
  return (is_training() || !running_mean.defined()) && !synchronizes();
}

bool BatchNorm2d::fuses() const { return !synchronizes() && !forward_hook_installed(); }

bool BatchNorm2d::synchronizes() const {
  return synchronize_with && synchronize_with->size() > 1 && is_training() && grad_mode_enabled();
}

InstanceNorm2d::InstanceNorm2d(const InstanceNorm2dOptions& o)
    : NormBase("InstanceNorm2d", o.num_features(), o.eps(), o.affine(), o.track_running_stats()), options(o) {}

Tensor InstanceNorm2d::forward(const Tensor& input) { return forward(input, BatchNormEpilogue{}); }

Tensor InstanceNorm2d::forward(const Tensor& input, const BatchNormEpilogue& after) {
  if (!forward_hook_installed()) return normalize(input, after);
  return apply_epilogue(apply_forward_hook(*this, input, normalize(input, {})), after, is_training());
}

// Instance norm is batch norm of a batch of one whose channels are the
// (sample, channel) planes: input [N, C, H, W] viewed as [1, N * C, H, W],
// with the per-channel weight, bias and running statistics repeated N times.
Tensor InstanceNorm2d::normalize(const Tensor& input, const BatchNormEpilogue& after) {
  const int64_t c = options.num_features();
  check_input("InstanceNorm2d", input, c);
  if (running_mean.defined() && !is_training()) {
    return batch_norm(input, weight, bias, running_mean, running_var, {false, options.momentum(), options.eps()},
                      after);
  }
  const int64_t n = input.size(0);
  const Tensor tiled_mean = tile(running_mean, n), tiled_var = tile(running_var, n);
  const Tensor planes = input.reshape({1, n * c, input.size(2), input.size(3)});
  // Dropout only in training, as everywhere: the statistics here are the batch's in eval too.
  BatchNormEpilogue planes_after = after;
  if (!is_training()) planes_after.dropout = 0;
  const Tensor output = batch_norm(planes, tile(weight, n), tile(bias, n), tiled_mean, tiled_var,
                                   {true, options.momentum(), options.eps()}, planes_after)
                            .reshape(input.shape());
  if (running_mean.defined()) {
    average_tiles(tiled_mean, running_mean);
    average_tiles(tiled_var, running_var);
  }
  return output;
}

Dropout::Dropout(double probability) : Module("Dropout"), p(probability) {
  PIXGRAD_CHECK(p >= 0 && p <= 1, "Dropout: probability must be in [0, 1], got ", p);
}

Tensor Dropout::forward(const Tensor& input) {
  return apply_forward_hook(*this, input, dropout(input, p, is_training()));
}

}  // namespace pixgrad::nn
