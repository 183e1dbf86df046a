// What every pix2pix discriminator shares: the options, the interface —
// logits for a (condition, image) pair — and the conv-norm-LeakyReLU block
// the PatchGANs are stacked from. The three architectures:
// models/nlayer_discriminator.h, models/pixel_discriminator.h,
// models/chainer_discriminator.h (models/networks.h picks one per preset).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <pixgrad/layers/conv.h>
#include <pixgrad/layers/module.h>
#include <pixgrad/models/norm_layer.h>
#include <pixgrad/models/presets.h>

namespace pixgrad::models {

struct PatchGanOptions {
  int64_t condition_channels = 3;
  int64_t image_channels = 3;
  int64_t ndf = 64;
  int n_layers = 3;    // NLayerDiscriminator: stride-2 layers (3 = 70x70 patches)
  bool pixel = false;  // the paper preset: the 1x1 PixelDiscriminator instead
  NormSettings norm;

  static PatchGanOptions for_preset(Preset preset, int64_t condition_channels, int64_t image_channels);
};

// A convolution, then the discriminator's norm when norm(), then
// LeakyReLU(0.2) when leaky_relu().
class ConvBlockOptions {
 public:
  explicit ConvBlockOptions(const nn::Conv2dOptions& conv) : conv_(conv) {}
  PIXGRAD_ARG(nn::Conv2dOptions, conv);
  PIXGRAD_ARG(bool, norm) = false;
  PIXGRAD_ARG(bool, leaky_relu) = true;
};

struct ConvBlock {
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::Module> norm;  // nullptr when none
  bool leaky_relu = true;

  Tensor forward(const Tensor& input) const;
};

class Discriminator : public nn::Module {
 public:
  using nn::Module::forward;
  // Logits [N, 1, h, w], one per patch, for the pair (condition, image):
  // here, the stack of layers on cat(condition, image).
  virtual Tensor forward(const Tensor& condition, const Tensor& image);
  const PatchGanOptions& options() const { return options_; }

 protected:
  Discriminator(std::string name, const PatchGanOptions& options);
  // Throws unless condition and image are [N, C, H, W] with the same N, H, W
  // and the options' channel counts.
  void check_inputs(const Tensor& condition, const Tensor& image) const;
  // A block whose conv is registered as `name` and its norm as "<name>_norm".
  ConvBlock add_block(const std::string& name, const ConvBlockOptions& options);
  // Appends a block to the stack, registered as "layer<k>" (k from 0).
  void add_layer(const ConvBlockOptions& options);
  // The stack of layers, in order, on `input`.
  Tensor forward_layers(Tensor input) const;

 private:
  PatchGanOptions options_;
  std::vector<ConvBlock> layers_;
};

}  // namespace pixgrad::models
