#include <pixgrad/models/unet_base.h>

#include <algorithm>
#include <utility>

#include <pixgrad/core/error.h>

namespace pixgrad::models {

UnetOptions UnetOptions::for_preset(Preset preset, int64_t input_channels, int64_t output_channels) {
  UnetOptions options;
  options.input_channels = input_channels;
  options.output_channels = output_channels;
  if (preset == Preset::Chainer) {
    options.num_downs = 7;
    options.norm.eps = 2e-5;      // chainer.links.BatchNormalization default
    options.norm.momentum = 0.1;  // its decay 0.9
  }
  return options;
}

int64_t UnetOptions::level_channels(int level) const {
  return ngf * std::min<int64_t>(int64_t{1} << std::min(level, 3), 8);
}

UnetBase::UnetBase(std::string name, const UnetOptions& options, int min_downs)
    : Module(std::move(name)), options_(options) {
  PIXGRAD_CHECK(options.ngf > 0 && options.input_channels > 0 && options.output_channels > 0, this->name(),
                ": channel counts must be positive (ngf ", options.ngf, ", input ", options.input_channels,
                ", output ", options.output_channels, ")");
  PIXGRAD_CHECK(options.num_downs <= 12, this->name(), ": num_downs ", options.num_downs,
                " is more than 12 downsamplings");
  PIXGRAD_CHECK(options.num_downs >= min_downs, this->name(), ": needs num_downs >= ", min_downs, ", got ",
                options.num_downs);
}

void UnetBase::check_input(const Tensor& input) const {
  const UnetOptions& o = options_;
  PIXGRAD_CHECK(input.dim() == 4 && input.size(1) == o.input_channels, name(), ": input ", shape_str(input.shape()),
                " is not [N, ", o.input_channels, ", H, W]");
  PIXGRAD_CHECK(input.size(2) % o.size_multiple() == 0 && input.size(3) % o.size_multiple() == 0, name(),
                ": input ", shape_str(input.shape()), ": height and width must be multiples of ", o.size_multiple(),
                " for ", o.num_downs, " downsamplings");
}

std::shared_ptr<nn::Module> UnetBase::add_norm(const std::string& name, int64_t channels) {
  std::shared_ptr<nn::Module> norm = make_norm(options_.norm, channels);
  return norm ? register_module(name, norm) : nullptr;
}

}  // namespace pixgrad::models
