// batch_norm (with what follows it fused, kernels/norm_epilogue.h) and dropout.
#include <cmath>
#include <utility>
#include <vector>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/dispatch.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/core/ops/internal.h>
#include <pixgrad/core/replay_values.h>
#include <pixgrad/kernels/philox.h>
#include <pixgrad/kernels/cpu/batch_norm.h>
#include <pixgrad/kernels/cpu/dropout.h>
#include <pixgrad/kernels/cuda/batch_norm.h>
#include <pixgrad/kernels/cuda/dropout.h>

namespace pixgrad {

namespace {

void check_channel_vector(const Tensor& vector, const Tensor& input, const char* role) {
  if (!vector.defined()) return;
  PIXGRAD_CHECK(vector.shape() == Shape{input.size(1)}, "batch_norm: ", role, " has shape ", shape_str(vector.shape()),
                ", expected [", input.size(1), "] for input ", shape_str(input.shape()));
  PIXGRAD_CHECK(vector.dtype() == input.dtype() && vector.device() == input.device(), "batch_norm: ", role, " is ",
                to_string(vector.dtype()), " on ", vector.device().str(), ", input is ", to_string(input.dtype()),
                " on ", input.device().str());
}

// Records [C, R, 3] in float64 beside the input (kernels/channel_moments.h),
// at least as many per channel as its values need (at most 32 values each).
// Whether they describe this very input is the caller's promise: checking
// would take the passes they save. Their counts are checked: here on the
// CPU, before anything is written or drawn; on a GPU (where reading them
// would cost a synchronisation) the handwritten kernels make the statistics
// of a miscounted channel NaN.
void check_moments(const Tensor& moments, const Tensor& input) {
  const int64_t needed = kernels::records_for(input.numel() / input.size(1));
  PIXGRAD_CHECK(moments.dim() == 3 && moments.size(0) == input.size(1) && moments.size(2) == 3 &&
                    moments.size(1) >= needed && moments.dtype() == DType::Float64 &&
                    moments.device() == input.device(),
                "batch_norm: input_moments ", shape_str(moments.shape()), " ", to_string(moments.dtype()), " on ",
                moments.device().str(), " are not the channel moments of input ", shape_str(input.shape()), " on ",
                input.device().str(), " (a convolution's output_moments: [", input.size(1),
                ", R, 3] float64, R >= ", needed, ")");
  if (!moments.is_cpu()) return;
  const int64_t channels = moments.size(0), per_channel = moments.size(1), values = input.numel() / channels;
  const kernels::MomentRecord* records = detail::moment_records_of(moments);
  int64_t miscounted = 0;
  for (int64_t c = 0; c < channels; ++c) {
    double counted = 0;
    for (int64_t r = 0; r < per_channel; ++r) counted += records[c * per_channel + r].count;
    miscounted += counted == static_cast<double>(values) ? 0 : 1;
  }
  PIXGRAD_CHECK(miscounted == 0, "batch_norm: the input moments of ", miscounted, " of ", channels,
                " channels count other than the ", values,
                " values of each: they are not this input's (a convolution's output_moments, unchanged since)");
}

}  // namespace

Tensor apply_epilogue(const Tensor& input, const BatchNormEpilogue& epilogue, bool training) {
  if (epilogue.activation == NormActivation::None && (epilogue.dropout == 0 || !training)) return input;
  const Tensor dropped =
      dropout(input, epilogue.dropout, training, epilogue.generator ? *epilogue.generator : default_generator());
  switch (epilogue.activation) {
    case NormActivation::Relu: return relu(dropped);
    case NormActivation::LeakyRelu: return leaky_relu(dropped, epilogue.negative_slope);
    case NormActivation::None: break;
  }
  return dropped;
}

Tensor batch_norm(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, BatchNormParams params, const BatchNormEpilogue& after,
                  const Tensor& out, const Tensor& input_moments) {
  PIXGRAD_CHECK(after.dropout >= 0 && after.dropout <= 1, "batch_norm: dropout probability must be in [0, 1], got ",
                after.dropout);
  // The backward reads the activation's slope from the sign of the output,
  // which a negative slope flips (and an infinite one turns into NaN): such an
  // epilogue runs as separate ops.
  const float slope = static_cast<float>(after.negative_slope);
  if (after.activation == NormActivation::LeakyRelu && !(std::isfinite(slope) && slope >= 0))
    return apply_epilogue(batch_norm(input, weight, bias, running_mean, running_var, params, {}, Tensor(),
                                     input_moments),
                          after, params.training);
  check_nonempty("batch_norm", input);
  PIXGRAD_CHECK(input.dim() >= 2, "batch_norm: input ", shape_str(input.shape()), " needs at least [N, C]");
  check_channel_vector(weight, input, "weight");
  check_channel_vector(bias, input, "bias");
  check_channel_vector(running_mean, input, "running_mean");
  check_channel_vector(running_var, input, "running_var");
  PIXGRAD_CHECK(running_mean.defined() == running_var.defined(),
                "batch_norm: give both running_mean and running_var, or neither");
  PIXGRAD_CHECK(params.eps > 0, "batch_norm: eps must be positive, got ", params.eps);

  const kernels::BatchNormShape shape{input.size(0), input.size(1), input.numel() / (input.size(0) * input.size(1))};
  const bool batch_statistics = params.training || !running_mean.defined();
  PIXGRAD_CHECK(!batch_statistics || shape.batch * shape.spatial > 1, "batch_norm: input ", shape_str(input.shape()),
                " has one value per channel; batch statistics need more");

  // Checked even where running statistics leave them unused, so that a
  // mistake shows in evaluation as it would in training.
  if (input_moments.defined()) check_moments(input_moments, input);
  kernels::GivenMoments moments;
  if (input_moments.defined() && batch_statistics)
    moments = {detail::moment_records_of(input_moments), input_moments.size(1)};

  kernels::NormEpilogue epilogue;
  epilogue.activation = after.activation;
  epilogue.slope = after.negative_slope;
  Generator& generator = after.generator ? *after.generator : default_generator();
  if (params.training && after.dropout > 0) {
    epilogue.dropout = true;
    epilogue.threshold = static_cast<float>(after.dropout);
    epilogue.keep_scale = 1.0 / (1.0 - after.dropout);
    epilogue.seed = generator.seed();
  }

  if (out.defined())
    PIXGRAD_CHECK(out.shape() == input.shape() && out.dtype() == input.dtype() && out.device() == input.device() &&
                      !out.requires_grad() && out.raw_data() != input.raw_data(),
                  "batch_norm: out ", shape_str(out.shape()), " ", to_string(out.dtype()), " ", out.device().str(),
                  (out.requires_grad() ? " requires grad and" : ""), " cannot take the result of input ",
                  shape_str(input.shape()),
                  " ", to_string(input.dtype()), " ", input.device().str(),
                  " (it needs the same shape, dtype and device, no autograd history, and other memory)");
  Tensor output = out.defined() ? out : Tensor::empty_like(input);
  Tensor mean = Tensor::empty({shape.channels}, input.device(), input.dtype());
  Tensor invstd = Tensor::empty_like(mean);
  const bool update_running = running_mean.defined() && params.training;
  run_kernel("batch_norm", input, [&](auto on, auto zero) {
    using T = decltype(zero);
    // dropout()'s draw: the same blocks of the same generator, in the same
    // order, taken once the dtype is known to be supported.
    if (epilogue.dropout) {
      const PhiloxStart start = reserve_philox(generator, philox::uniform_blocks(static_cast<uint64_t>(input.numel())));
      epilogue.offset = start.offset;
      epilogue.offset_shift = start.offset_shift;
    }
    if (batch_statistics) {
      const Tensor unbiased_var = Tensor::empty_like(mean);
      batch_norm_forward_training(on, shape, input.data<T>(), data_or_null<T>(weight), data_or_null<T>(bias),
                                  params.eps, output.data<T>(), mean.data<T>(), invstd.data<T>(),
                                  unbiased_var.data<T>(), epilogue, moments);
      if (update_running)
        batch_norm_update_running(on, shape.channels, mean.data<T>(), unbiased_var.data<T>(), params.momentum,
                                  running_mean.data<T>(), running_var.data<T>());
    } else {
      batch_norm_statistics_from_running(on, shape.channels, running_mean.data<T>(), running_var.data<T>(),
                                         params.eps, mean.data<T>(), invstd.data<T>());
      batch_norm_forward_inference(on, shape, input.data<T>(), data_or_null<T>(weight), data_or_null<T>(bias),
                                   mean.data<T>(), invstd.data<T>(), output.data<T>(), epilogue);
    }
  });

  // The backward calls the kernels directly: first-order only. It undoes the
  // epilogue from the output (saved only then) and the mask drawn again.
  std::vector<Tensor> saved{mean, invstd};
  if (!epilogue.identity()) saved.push_back(output);
  return record(
      "batch_norm", output, {input, weight, bias},
      [shape, batch_statistics, epilogue](const Tensor& g, const BackwardContext& context) {
        const Tensor& x = context.input(0);
        const Tensor& w = context.input(1);
        const Tensor &mean = context.saved(0), &invstd = context.saved(1);
        const Tensor y = epilogue.identity() ? Tensor() : context.saved(2);
        Tensor grad_x = context.needs_input_grad(0) ? Tensor::empty_like(x) : Tensor();
        Tensor grad_w = context.needs_input_grad(1) ? Tensor::empty_like(w) : Tensor();
        Tensor grad_b = context.needs_input_grad(2) ? Tensor::empty_like(mean) : Tensor();
        run_kernel("batch_norm", x, [&](auto on, auto zero) {
          using T = decltype(zero);
          batch_norm_backward(on, shape, x.data<T>(), g.data<T>(), data_or_null<T>(w), mean.data<T>(),
                              invstd.data<T>(), batch_statistics, data_or_null<T>(grad_x), data_or_null<T>(grad_w),
                              data_or_null<T>(grad_b), data_or_null<T>(y), epilogue);
        });
        return std::vector<Tensor>{grad_x, grad_w, grad_b};
      },
      std::move(saved));
}

Tensor dropout(const Tensor& input, double p, bool training, Generator& generator) {
  check_nonempty("dropout", input);
  PIXGRAD_CHECK(p >= 0 && p <= 1, "dropout: probability must be in [0, 1], got ", p);
  if (!training || p == 0) return input;
  Tensor mask = Tensor::empty_like(input);
  const int64_t n = input.numel();
  const PhiloxStart start = reserve_philox(generator, philox::uniform_blocks(static_cast<uint64_t>(n)));
  run_kernel("dropout", input, [&](auto on, auto zero) {
    using T = decltype(zero);
    dropout_mask(on, mask.data<T>(), n, p, start.seed, start.offset, start.offset_shift);
  });
  Tensor output;
  {
    NoGradGuard no_grad;
    output = mul(input, mask);
  }
  return record_differentiable(
      "dropout", output, {input},
      [](const Tensor& g, const BackwardContext& context) { return std::vector<Tensor>{mul(g, context.saved(0))}; },
      {mask});
}

}  // namespace pixgrad
