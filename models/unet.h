// UnetGenerator: the PyTorch reference's U-Net (unet_256 = 8 downsamplings,
// unet_128 = 7), the paper preset's generator.
//
// Every level halves the resolution with a 4x4 stride-2 conv; levels below
// the outermost start with LeakyReLU(0.2), levels between the outermost and
// the innermost end with a norm. Decoder levels run ReLU, a 4x4 stride-2
// transposed conv, a norm (not at the outermost), dropout 0.5 in the
// num_downs - 5 levels just above the innermost, and tanh at the top. The
// reference applies LeakyReLU in place, so its skip connections carry the
// *activated* encoder features; we reproduce that.
//
// Modules: "down<i>" (and "down<i>_norm"), "up<i>" (and "up<i>_norm"), i from
// the outermost level 0; convs have a bias only with instance norm (the
// reference's use_bias), and up0 always.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <pixgrad/layers/conv.h>
#include <pixgrad/models/unet_base.h>

namespace pixgrad::models {

class UnetGenerator : public UnetBase {
 public:
  // num_downs >= 5.
  explicit UnetGenerator(const UnetOptions& options);
  Tensor forward(const Tensor& input) override;

 private:
  std::vector<std::shared_ptr<nn::Conv2d>> down_convs_;
  std::vector<std::shared_ptr<nn::Module>> down_norms_;  // nullptr where a level has none
  std::vector<std::shared_ptr<nn::ConvTranspose2d>> up_convs_;
  std::vector<std::shared_ptr<nn::Module>> up_norms_;
  std::vector<bool> up_dropout_;
};

}  // namespace pixgrad::models
