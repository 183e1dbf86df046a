#include <pixgrad/models/unet.h>

#include <pixgrad/core/ops.h>

namespace pixgrad::models {

UnetGenerator::UnetGenerator(const UnetOptions& options) : UnetBase("UnetGenerator", options, 5) {
  const int n = options.num_downs;
  const bool bias = options.norm.kind == NormKind::Instance;
  for (int i = 0; i < n; ++i) {
    const std::string name = "down" + std::to_string(i);
    const int64_t in = i == 0 ? options.input_channels : options.level_channels(i - 1);
    const int64_t out = options.level_channels(i);
    down_convs_.push_back(
        register_module(name, nn::make<nn::Conv2d>(nn::Conv2dOptions(in, out, 4).stride(2).padding(1).bias(bias))));
    const bool has_norm = i > 0 && i < n - 1;
    down_norms_.push_back(has_norm ? add_norm(name + "_norm", options.level_channels(i)) : nullptr);
  }
  for (int i = 0; i < n; ++i) {
    const std::string name = "up" + std::to_string(i);
    const int64_t in = i == n - 1 ? options.level_channels(i) : 2 * options.level_channels(i);
    const int64_t out = i == 0 ? options.output_channels : options.level_channels(i - 1);
    up_convs_.push_back(register_module(
        name, nn::make<nn::ConvTranspose2d>(
                  nn::ConvTranspose2dOptions(in, out, 4).stride(2).padding(1).bias(i == 0 || bias))));
    up_norms_.push_back(i > 0 ? add_norm(name + "_norm", out) : nullptr);
    up_dropout_.push_back(options.use_dropout && i >= 4 && i <= n - 2);
  }
  reinitialise_batch_norm_weights(*this);
}

Tensor UnetGenerator::forward(const Tensor& input) {
  check_input(input);
  const int n = options().num_downs;
  // Each norm does the leaky ReLU after it (and, going up, the dropout) in
  // its own pass. A normed encoder level writes its features into the first
  // slot of the concat that feeds the up conv one level deeper, and that
  // level's decoder norm writes the second: with a batch of one the slots are
  // side by side and the concat copies nothing (concat_slots, core/ops.h).
  // A batch norm takes its statistics from the moments its convolution
  // wrote with its output (moments_for, models/norm_layer.h).
  const BatchNormEpilogue leaky = BatchNormEpilogue::leaky_relu(0.2);
  std::vector<Tensor> skips;  // skips[i - 1]: the activated input of level i
  std::vector<Tensor> decoder_slots(static_cast<size_t>(n));  // where up level i's norm may write
  Tensor activated = leaky_relu(down_convs_[0]->forward(input), 0.2);
  for (int i = 1; i < n - 1; ++i) {
    skips.push_back(activated);
    Tensor moments;
    const Tensor features =
        down_convs_[i]->forward(activated, moments_for(down_norms_[i], is_training(), moments));
    const std::vector<Tensor> slots = skip_slots(features, down_norms_[i], up_norms_[i + 1], is_training());
    decoder_slots[static_cast<size_t>(i + 1)] = slots[1];
    activated = apply_norm(down_norms_[i], features, leaky, is_training(), slots[0], moments);
  }
  skips.push_back(activated);
  Tensor h = down_convs_[n - 1]->forward(activated);  // the innermost level: no norm
  for (int i = n - 1; i >= 0; --i) {
    const BatchNormEpilogue after = BatchNormEpilogue::dropout_only(up_dropout_[i] ? options().dropout : 0.0);
    Tensor moments;
    const Tensor upsampled = up_convs_[i]->forward(relu(h), moments_for(up_norms_[i], is_training(), moments));
    h = apply_norm(up_norms_[i], upsampled, after, is_training(), decoder_slots[static_cast<size_t>(i)], moments);
    h = i == 0 ? tanh(h) : concat({skips[i - 1], h}, 1);
  }
  return h;
}

}  // namespace pixgrad::models
