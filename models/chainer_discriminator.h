// ChainerDiscriminator: the original Chainer trainer's two-stream
// discriminator (pfnet-research/chainer-pix2pix net.py), the chainer
// preset's. The condition and the image each go through a 4x4 stride-2 conv
// + LeakyReLU(0.2) to ndf/2 channels ("condition_stream", "image_stream");
// the two are concatenated, then three conv-norm-LeakyReLU downsamplings and
// a 3x3 conv to one channel. Every conv has a bias.
#pragma once

#include <pixgrad/models/discriminator.h>

namespace pixgrad::models {

class ChainerDiscriminator : public Discriminator {
 public:
  // ndf even.
  explicit ChainerDiscriminator(const PatchGanOptions& options);
  using Discriminator::forward;
  Tensor forward(const Tensor& condition, const Tensor& image) override;

 private:
  ConvBlock condition_stream_, image_stream_;
};

}  // namespace pixgrad::models
