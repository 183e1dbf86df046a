// U-Net generators.
//
// paper (PyTorch reference UnetGenerator, unet_256 = 8 downsamplings,
// unet_128 = 7): every level halves the resolution with a 4x4 stride-2 conv;
// levels below the outermost start with LeakyReLU(0.2), levels between the
// outermost and the innermost end with a norm. Decoder levels run ReLU, a 4x4
// stride-2 transposed conv, a norm (not at the outermost), dropout 0.5 in the
// num_downs - 5 levels just above the innermost, and tanh at the top. The
// reference applies LeakyReLU in place, so its skip connections carry the
// *activated* encoder features; we reproduce that.
//
// chainer (the original Chainer trainer's Encoder/Decoder): a 3x3 stride-1
// conv + LeakyReLU, then conv-BN-LeakyReLU downsamplings; deconv-BN-(dropout)
// -ReLU upsamplings with dropout in the first three, the skip concatenated
// after the upsampled features, and a 3x3 conv out with no tanh.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <pixgrad/layers/conv.h>
#include <pixgrad/layers/module.h>
#include <pixgrad/models/norm_layer.h>
#include <pixgrad/models/presets.h>

namespace pixgrad::models {

struct UnetOptions {
  Preset preset = Preset::Paper;
  int64_t input_channels = 3;
  int64_t output_channels = 3;
  int64_t ngf = 64;    // channels after the first conv; deeper levels use up to 8x
  int num_downs = 8;   // stride-2 downsamplings (paper: 8 for 256x256; chainer: 7)
  NormSettings norm;
  bool use_dropout = true;
  double dropout = 0.5;

  // The references' constants for each preset.
  static UnetOptions for_preset(Preset preset, int64_t input_channels, int64_t output_channels);
};

class UnetGenerator : public nn::Module {
 public:
  explicit UnetGenerator(const UnetOptions& options);
  Tensor forward(const Tensor& input) override;
  const UnetOptions& options() const { return options_; }
  // The input side length must be a multiple of this.
  int64_t size_multiple() const { return int64_t{1} << options_.num_downs; }

 private:
  Tensor forward_paper(const Tensor& input);
  Tensor forward_chainer(const Tensor& input);
  int64_t level_channels(int level) const;
  // Registers the preset's norm for `channels` (nullptr when the norm is none).
  std::shared_ptr<nn::Module> add_norm(const std::string& name, int64_t channels);

  UnetOptions options_;
  std::shared_ptr<nn::Conv2d> input_conv_;  // chainer: the 3x3 stem; paper: unused
  std::shared_ptr<nn::Conv2d> output_conv_; // chainer: the 3x3 head; paper: unused
  std::vector<std::shared_ptr<nn::Conv2d>> down_convs_;
  std::vector<std::shared_ptr<nn::Module>> down_norms_;  // nullptr where a level has none
  std::vector<std::shared_ptr<nn::ConvTranspose2d>> up_convs_;
  std::vector<std::shared_ptr<nn::Module>> up_norms_;
  std::vector<bool> up_dropout_;
};

}  // namespace pixgrad::models
