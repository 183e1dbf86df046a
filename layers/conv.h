// Conv2d and ConvTranspose2d: square kernels, PyTorch weight layouts, weights
// drawn from Normal(0, 0.02) as in the pix2pix paper and its reference
// trainers (PyTorch's own default, Kaiming-uniform, is not used).
#pragma once

#include <cstdint>
#include <string>

#include <pixgrad/layers/module.h>

namespace pixgrad::nn {

class ConvOptions {
 public:
  ConvOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  PIXGRAD_ARG(int64_t, in_channels);
  PIXGRAD_ARG(int64_t, out_channels);
  PIXGRAD_ARG(int64_t, kernel_size);
  PIXGRAD_ARG(int64_t, stride) = 1;
  PIXGRAD_ARG(int64_t, padding) = 0;
  PIXGRAD_ARG(bool, bias) = true;
};
using Conv2dOptions = ConvOptions;
using ConvTranspose2dOptions = ConvOptions;

// What both convolutions share: the options, the weight and, when
// options.bias(), the bias [out].
class ConvBase : public Module {
 public:
  ConvOptions options;
  Tensor weight, bias;

 protected:
  ConvBase(std::string name, const ConvOptions& options, const Shape& weight_shape);
  Tensor* moments_wanted(Tensor* output_moments) const;
};

// weight [out, in, k, k].
class Conv2d : public ConvBase {
 public:
  explicit Conv2d(const Conv2dOptions& options);
  Tensor forward(const Tensor& input) override;
  // forward, also giving the output's channel moments for a BatchNorm2d
  // that reads it next (conv2d's output_moments, core/ops.h); none (an
  // undefined tensor) where conv2d gives none (cuDNN, cuBLAS) and while a
  // forward hook is installed.
  Tensor forward(const Tensor& input, Tensor* output_moments);
};

// weight [in, out, k, k]; output extent (in - 1) * stride - 2 * padding + k.
class ConvTranspose2d : public ConvBase {
 public:
  explicit ConvTranspose2d(const ConvTranspose2dOptions& options);
  Tensor forward(const Tensor& input) override;
  // As Conv2d's; none with a bias either (it is added after the moments).
  Tensor forward(const Tensor& input, Tensor* output_moments);
};

}  // namespace pixgrad::nn
