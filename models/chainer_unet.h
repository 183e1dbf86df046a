// ChainerUnet: the original Chainer trainer's Encoder/Decoder
// (pfnet-research/chainer-pix2pix net.py), the chainer preset's generator.
//
// A 3x3 stride-1 conv + LeakyReLU(0.2), then num_downs conv-norm-LeakyReLU
// downsamplings (4x4, stride 2); num_downs deconv-norm-(dropout)-ReLU
// upsamplings with dropout in the first three, each after the first taking
// the upsampled features concatenated with the encoder's at that level; the
// stem's features joined last, and a 3x3 conv out with no tanh. Every conv
// has a bias.
//
// Modules: "stem", "down<i>" (i = 1..num_downs) and "down<i>_norm", "up<j>"
// (j = 0..num_downs-1, innermost first) and "up<j>_norm", "head".
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <pixgrad/layers/conv.h>
#include <pixgrad/models/unet_base.h>

namespace pixgrad::models {

class ChainerUnet : public UnetBase {
 public:
  // num_downs >= 1.
  explicit ChainerUnet(const UnetOptions& options);
  Tensor forward(const Tensor& input) override;

 private:
  std::shared_ptr<nn::Conv2d> stem_;
  std::vector<std::shared_ptr<nn::Conv2d>> down_convs_;
  std::vector<std::shared_ptr<nn::Module>> down_norms_;  // nullptr with norm none
  std::vector<std::shared_ptr<nn::ConvTranspose2d>> up_convs_;
  std::vector<std::shared_ptr<nn::Module>> up_norms_;
  std::vector<bool> up_dropout_;
  std::shared_ptr<nn::Conv2d> head_;
};

}  // namespace pixgrad::models
