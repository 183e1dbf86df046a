// What both U-Net generators share: the options, the input check, and how a
// level registers its norm. The two architectures: models/unet.h (the
// PyTorch reference's UnetGenerator) and models/chainer_unet.h (the original
// Chainer trainer's encoder-decoder); models/networks.h picks one per preset.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <pixgrad/core/tensor.h>
#include <pixgrad/layers/module.h>
#include <pixgrad/models/norm_layer.h>
#include <pixgrad/models/presets.h>

namespace pixgrad::models {

struct UnetOptions {
  int64_t input_channels = 3;
  int64_t output_channels = 3;
  int64_t ngf = 64;    // channels after the first conv; deeper levels use up to 8x
  int num_downs = 8;   // stride-2 downsamplings (paper: 8 for 256x256; chainer: 7)
  NormSettings norm;
  bool use_dropout = true;
  double dropout = 0.5;

  // The references' constants for each preset.
  static UnetOptions for_preset(Preset preset, int64_t input_channels, int64_t output_channels);

  // Channels at encoder level `level`: ngf, 2 ngf, 4 ngf, then 8 ngf.
  int64_t level_channels(int level) const;
  // The input's height and width must be multiples of this (2^num_downs).
  int64_t size_multiple() const { return int64_t{1} << num_downs; }
};

class UnetBase : public nn::Module {
 public:
  const UnetOptions& options() const { return options_; }

 protected:
  // Throws, naming the model, unless the channel counts are positive and
  // num_downs is in min_downs..12.
  UnetBase(std::string name, const UnetOptions& options, int min_downs);
  // Throws unless `input` is [N, input_channels, H, W] with H and W
  // multiples of size_multiple().
  void check_input(const Tensor& input) const;
  // Registers the options' norm for `channels` as `name`; nullptr when the
  // norm is none.
  std::shared_ptr<nn::Module> add_norm(const std::string& name, int64_t channels);

 private:
  UnetOptions options_;
};

}  // namespace pixgrad::models
