#include <pixgrad/layers/conv.h>

#include <utility>

#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/layers/forward_hook.h>

namespace pixgrad::nn {

namespace {
constexpr double kWeightStddev = 0.02;
}  // namespace

ConvBase::ConvBase(std::string name, const ConvOptions& conv_options, const Shape& weight_shape)
    : Module(std::move(name)), options(conv_options) {
  const ConvOptions& o = options;
  PIXGRAD_CHECK(
      o.in_channels() > 0 && o.out_channels() > 0 && o.kernel_size() > 0 && o.stride() > 0 && o.padding() >= 0,
      this->name(), ": invalid options (in ", o.in_channels(), ", out ", o.out_channels(), ", kernel ", o.kernel_size(),
      ", stride ", o.stride(), ", padding ", o.padding(), ")");
  weight = register_parameter("weight", Tensor::normal(weight_shape, 0.0, kWeightStddev));
  if (o.bias()) bias = register_parameter("bias", Tensor::zeros({o.out_channels()}));
}

Conv2d::Conv2d(const Conv2dOptions& o)
    : ConvBase("Conv2d", o, {o.out_channels(), o.in_channels(), o.kernel_size(), o.kernel_size()}) {}

// Where the caller asks for the output's moments and no forward hook may
// change the output after they were taken.
Tensor* ConvBase::moments_wanted(Tensor* output_moments) const {
  if (output_moments == nullptr) return nullptr;
  *output_moments = Tensor();
  return forward_hook_installed() ? nullptr : output_moments;
}

Tensor Conv2d::forward(const Tensor& input) { return forward(input, nullptr); }

Tensor Conv2d::forward(const Tensor& input, Tensor* output_moments) {
  return apply_forward_hook(*this, input, conv2d(input, weight, bias, {options.stride(), options.padding()},
                                                 moments_wanted(output_moments)));
}

ConvTranspose2d::ConvTranspose2d(const ConvTranspose2dOptions& o)
    : ConvBase("ConvTranspose2d", o, {o.in_channels(), o.out_channels(), o.kernel_size(), o.kernel_size()}) {}

Tensor ConvTranspose2d::forward(const Tensor& input) { return forward(input, nullptr); }

Tensor ConvTranspose2d::forward(const Tensor& input, Tensor* output_moments) {
  return apply_forward_hook(*this, input, conv_transpose2d(input, weight, bias, {options.stride(), options.padding()},
                                                           moments_wanted(output_moments)));
}

}  // namespace pixgrad::nn
