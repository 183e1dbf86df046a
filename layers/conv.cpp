#include "layers/conv.h"

#include "core/error.h"
#include "core/ops.h"

namespace pixgrad::nn {

namespace {

constexpr double kWeightStddev = 0.02;

void check_options(const char* module, const ConvOptions& o) {
  PIXGRAD_CHECK(o.in_channels() > 0 && o.out_channels() > 0 && o.kernel_size() > 0 && o.stride() > 0 &&
                    o.padding() >= 0,
                module, ": invalid options (in ", o.in_channels(), ", out ", o.out_channels(), ", kernel ",
                o.kernel_size(), ", stride ", o.stride(), ", padding ", o.padding(), ")");
}

}  // namespace

Conv2d::Conv2d(const Conv2dOptions& conv_options) : Module("Conv2d"), options(conv_options) {
  check_options("Conv2d", options);
  const int64_t k = options.kernel_size();
  weight = register_parameter(
      "weight", Tensor::normal({options.out_channels(), options.in_channels(), k, k}, 0.0, kWeightStddev));
  if (options.bias()) bias = register_parameter("bias", Tensor::zeros({options.out_channels()}));
}

Tensor Conv2d::forward(const Tensor& input) {
  return conv2d(input, weight, bias, {options.stride(), options.padding()});
}

ConvTranspose2d::ConvTranspose2d(const ConvTranspose2dOptions& conv_options)
    : Module("ConvTranspose2d"), options(conv_options) {
  check_options("ConvTranspose2d", options);
  const int64_t k = options.kernel_size();
  weight = register_parameter(
      "weight", Tensor::normal({options.in_channels(), options.out_channels(), k, k}, 0.0, kWeightStddev));
  if (options.bias()) bias = register_parameter("bias", Tensor::zeros({options.out_channels()}));
}

Tensor ConvTranspose2d::forward(const Tensor& input) {
  return conv_transpose2d(input, weight, bias, {options.stride(), options.padding()});
}

}  // namespace pixgrad::nn
