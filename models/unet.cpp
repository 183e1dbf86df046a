#include <pixgrad/models/unet.h>

#include <algorithm>
#include <string>

#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/layers/init.h>
#include <pixgrad/layers/normalization.h>

namespace pixgrad::models {

namespace {

std::shared_ptr<nn::Conv2d> conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool bias) {
  return std::make_shared<nn::Conv2d>(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(bias));
}

std::shared_ptr<nn::ConvTranspose2d> deconv(int64_t in, int64_t out, bool bias) {
  return std::make_shared<nn::ConvTranspose2d>(nn::ConvTranspose2dOptions(in, out, 4).stride(2).padding(1).bias(bias));
}

Tensor apply_if(const std::shared_ptr<nn::Module>& module, const Tensor& input) {
  return module ? module->forward(input) : input;
}

}  // namespace

UnetOptions UnetOptions::for_preset(Preset preset, int64_t input_channels, int64_t output_channels) {
  UnetOptions options;
  options.preset = preset;
  options.input_channels = input_channels;
  options.output_channels = output_channels;
  if (preset == Preset::Chainer) {
    options.num_downs = 7;
    options.norm.eps = 2e-5;      // chainer.links.BatchNormalization default
    options.norm.momentum = 0.1;  // its decay 0.9
  }
  return options;
}

int64_t UnetGenerator::level_channels(int level) const {
  return options_.ngf * std::min<int64_t>(int64_t{1} << std::min(level, 3), 8);
}

UnetGenerator::UnetGenerator(const UnetOptions& options) : Module("UnetGenerator"), options_(options) {
  const int n = options.num_downs;
  PIXGRAD_CHECK(options.ngf > 0 && options.input_channels > 0 && options.output_channels > 0,
                "UnetGenerator: channel counts must be positive (ngf ", options.ngf, ", input ",
                options.input_channels, ", output ", options.output_channels, ")");
  PIXGRAD_CHECK(n <= 12, "UnetGenerator: num_downs ", n, " is more than 12 downsamplings");
  if (options.preset == Preset::Paper) {
    PIXGRAD_CHECK(n >= 5, "UnetGenerator: the paper preset needs num_downs >= 5, got ", n);
    // The reference gives convs a bias only when the norm is instance norm.
    const bool bias = options.norm.kind == NormKind::Instance;
    for (int i = 0; i < n; ++i) {
      const int64_t in = i == 0 ? options.input_channels : level_channels(i - 1);
      down_convs_.push_back(register_module("down" + std::to_string(i), conv(in, level_channels(i), 4, 2, 1, bias)));
      const bool has_norm = i > 0 && i < n - 1;
      down_norms_.push_back(has_norm ? add_norm("down" + std::to_string(i) + "_norm", level_channels(i)) : nullptr);
    }
    for (int i = 0; i < n; ++i) {
      const int64_t in = i == n - 1 ? level_channels(i) : 2 * level_channels(i);
      const int64_t out = i == 0 ? options.output_channels : level_channels(i - 1);
      up_convs_.push_back(register_module("up" + std::to_string(i), deconv(in, out, i == 0 || bias)));
      up_norms_.push_back(i > 0 ? add_norm("up" + std::to_string(i) + "_norm", out) : nullptr);
      up_dropout_.push_back(options.use_dropout && i >= 4 && i <= n - 2);
    }
  } else {
    PIXGRAD_CHECK(n >= 1, "UnetGenerator: the chainer preset needs num_downs >= 1, got ", n);
    input_conv_ = register_module("stem", conv(options.input_channels, level_channels(0), 3, 1, 1, true));
    for (int i = 1; i <= n; ++i) {
      down_convs_.push_back(
          register_module("down" + std::to_string(i), conv(level_channels(i - 1), level_channels(i), 4, 2, 1, true)));
      down_norms_.push_back(add_norm("down" + std::to_string(i) + "_norm", level_channels(i)));
    }
    for (int j = 0; j < n; ++j) {
      const int64_t in = j == 0 ? level_channels(n) : 2 * level_channels(n - j);
      const int64_t out = level_channels(n - 1 - j);
      up_convs_.push_back(register_module("up" + std::to_string(j), deconv(in, out, true)));
      up_norms_.push_back(add_norm("up" + std::to_string(j) + "_norm", out));
      up_dropout_.push_back(options.use_dropout && j < 3);
    }
    output_conv_ = register_module("head", conv(2 * level_channels(0), options.output_channels, 3, 1, 1, true));
  }
  if (options.preset == Preset::Paper) reinitialise_batch_norm_weights(*this);
}

std::shared_ptr<nn::Module> UnetGenerator::add_norm(const std::string& name, int64_t channels) {
  std::shared_ptr<nn::Module> norm = make_norm(options_.norm, channels);
  return norm ? register_module(name, norm) : nullptr;
}

Tensor UnetGenerator::forward(const Tensor& input) {
  PIXGRAD_CHECK(input.dim() == 4 && input.size(1) == options_.input_channels, "UnetGenerator: input ",
                shape_str(input.shape()), " is not [N, ", options_.input_channels, ", H, W]");
  PIXGRAD_CHECK(input.size(2) % size_multiple() == 0 && input.size(3) % size_multiple() == 0, "UnetGenerator: input ",
                shape_str(input.shape()), ": height and width must be multiples of ", size_multiple(), " for ",
                options_.num_downs, " downsamplings");
  return options_.preset == Preset::Paper ? forward_paper(input) : forward_chainer(input);
}

Tensor UnetGenerator::forward_paper(const Tensor& input) {
  const int n = options_.num_downs;
  std::vector<Tensor> skips;  // skips[i - 1]: the activated input of level i
  Tensor h = down_convs_[0]->forward(input);
  for (int i = 1; i < n; ++i) {
    const Tensor activated = leaky_relu(h, 0.2);
    skips.push_back(activated);
    h = apply_if(down_norms_[i], down_convs_[i]->forward(activated));
  }
  for (int i = n - 1; i >= 0; --i) {
    h = apply_if(up_norms_[i], up_convs_[i]->forward(relu(h)));
    if (up_dropout_[i]) h = dropout(h, options_.dropout, is_training());
    h = i == 0 ? tanh(h) : concat({skips[i - 1], h}, 1);
  }
  return h;
}

Tensor UnetGenerator::forward_chainer(const Tensor& input) {
  const int n = options_.num_downs;
  std::vector<Tensor> features{leaky_relu(input_conv_->forward(input), 0.2)};
  for (int i = 0; i < n; ++i)
    features.push_back(leaky_relu(apply_if(down_norms_[i], down_convs_[i]->forward(features.back())), 0.2));
  Tensor h = features.back();
  for (int j = 0; j < n; ++j) {
    if (j > 0) h = concat({h, features[n - j]}, 1);
    h = apply_if(up_norms_[j], up_convs_[j]->forward(h));
    if (up_dropout_[j]) h = dropout(h, options_.dropout, is_training());
    h = relu(h);
  }
  return output_conv_->forward(concat({h, features[0]}, 1));
}

}  // namespace pixgrad::models
