#include <pixgrad/models/discriminator.h>

#include <utility>

#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>

namespace pixgrad::models {

PatchGanOptions PatchGanOptions::for_preset(Preset preset, int64_t condition_channels, int64_t image_channels) {
  PatchGanOptions options;
  options.condition_channels = condition_channels;
  options.image_channels = image_channels;
  if (preset == Preset::Chainer) options.norm.eps = 2e-5;
  return options;
}

Tensor ConvBlock::forward(const Tensor& input) const {
  const BatchNormEpilogue after = leaky_relu ? BatchNormEpilogue::leaky_relu(0.2) : BatchNormEpilogue{};
  // No dropout here: the mode given is the norm's own, so that it fuses.
  const bool training = norm && norm->is_training();
  Tensor moments;  // the conv's output moments, for a batch norm's statistics
  const Tensor convolved = conv->forward(input, moments_for(norm, training, moments));
  return apply_norm(norm, convolved, after, training, Tensor(), moments);
}

Discriminator::Discriminator(std::string name, const PatchGanOptions& options)
    : Module(std::move(name)), options_(options) {
  PIXGRAD_CHECK(options.ndf > 0 && options.condition_channels > 0 && options.image_channels > 0, this->name(),
                ": channel counts must be positive (ndf ", options.ndf, ", condition ", options.condition_channels,
                ", image ", options.image_channels, ")");
}

void Discriminator::check_inputs(const Tensor& condition, const Tensor& image) const {
  PIXGRAD_CHECK(condition.dim() == 4 && image.dim() == 4 && condition.size(0) == image.size(0) &&
                    condition.size(2) == image.size(2) && condition.size(3) == image.size(3),
                name(), ": condition ", shape_str(condition.shape()), " and image ", shape_str(image.shape()),
                " must be [N, C, H, W] with the same N, H, W");
  PIXGRAD_CHECK(condition.size(1) == options_.condition_channels && image.size(1) == options_.image_channels, name(),
                ": expected ", options_.condition_channels, " condition and ", options_.image_channels,
                " image channels, got ", shape_str(condition.shape()), " and ", shape_str(image.shape()));
}

ConvBlock Discriminator::add_block(const std::string& name, const ConvBlockOptions& options) {
  ConvBlock block;
  block.conv = register_module(name, nn::make<nn::Conv2d>(options.conv()));
  if (options.norm()) block.norm = make_norm(options_.norm, options.conv().out_channels());
  if (block.norm) register_module(name + "_norm", block.norm);
  block.leaky_relu = options.leaky_relu();
  return block;
}

void Discriminator::add_layer(const ConvBlockOptions& options) {
  layers_.push_back(add_block("layer" + std::to_string(layers_.size()), options));
}

Tensor Discriminator::forward(const Tensor& condition, const Tensor& image) {
  check_inputs(condition, image);
  return forward_layers(concat({condition, image}, 1));
}

Tensor Discriminator::forward_layers(Tensor input) const {
  for (const ConvBlock& layer : layers_) input = layer.forward(input);
  return input;
}

}  // namespace pixgrad::models
