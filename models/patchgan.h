// PatchGAN discriminators: fully convolutional, one logit per receptive-field
// patch, conditioned on the generator's input.
//
// paper (PyTorch reference NLayerDiscriminator, on cat(condition, image)):
// 4x4 conv stride 2 + LeakyReLU(0.2); n_layers - 1 more stride-2 conv-norm-
// LeakyReLU with width doubling up to 8x; one stride-1 conv-norm-LeakyReLU;
// a stride-1 conv to one channel. n_layers = 3 is the 70x70 PatchGAN. The
// pixel variant (PixelDiscriminator) uses 1x1 convs: a 1x1 PixelGAN.
//
// chainer (the original Chainer trainer): the condition and the image each go
// through a 4x4 stride-2 conv + LeakyReLU to ndf/2 channels; the two are
// concatenated, then three conv-BN-LeakyReLU downsamplings and a 3x3 conv.
#pragma once

#include <memory>
#include <vector>

#include <pixgrad/layers/conv.h>
#include <pixgrad/layers/module.h>
#include <pixgrad/models/norm_layer.h>
#include <pixgrad/models/presets.h>

namespace pixgrad::models {

struct PatchGanOptions {
  Preset preset = Preset::Paper;
  int64_t condition_channels = 3;
  int64_t image_channels = 3;
  int64_t ndf = 64;
  int n_layers = 3;    // paper: stride-2 layers (3 = 70x70 patches)
  bool pixel = false;  // paper: 1x1 PixelGAN instead
  NormSettings norm;

  static PatchGanOptions for_preset(Preset preset, int64_t condition_channels, int64_t image_channels);
};

class PatchGanDiscriminator : public nn::Module {
 public:
  explicit PatchGanDiscriminator(const PatchGanOptions& options);
  using nn::Module::forward;
  // Logits [N, 1, h, w] for the pair (condition, image).
  Tensor forward(const Tensor& condition, const Tensor& image);
  const PatchGanOptions& options() const { return options_; }

 private:
  struct Layer {
    std::shared_ptr<nn::Conv2d> conv;
    std::shared_ptr<nn::Module> norm;  // may be nullptr
    bool activation = true;            // LeakyReLU(0.2) after
  };
  void add_layer(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool bias, bool norm,
                 bool activation);
  static Tensor run(const Layer& layer, const Tensor& input);

  PatchGanOptions options_;
  std::vector<Layer> layers_;
  Layer condition_stream_, image_stream_;  // chainer only
};

}  // namespace pixgrad::models
