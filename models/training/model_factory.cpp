#include "models/training/model_factory.h"

#include "core/cuda_info.h"
#include "core/error.h"

namespace pixgrad::training {

models::Pix2PixOptions pix2pix_options(const TrainConfig& config) {
  const models::Preset preset = models::parse_preset(config.preset);
  models::Pix2PixOptions options =
      models::Pix2PixOptions::for_preset(preset, config.input_channels(), config.output_channels());
  options.generator.ngf = config.ngf;
  if (config.num_downs > 0) options.generator.num_downs = config.num_downs;
  options.generator.norm.kind = models::parse_norm(config.norm);
  options.generator.use_dropout = !config.no_dropout;
  options.discriminator.ndf = config.ndf;
  options.discriminator.n_layers = config.n_layers;
  options.discriminator.pixel = config.discriminator == "pixel";
  options.discriminator.norm.kind = models::parse_norm(config.norm);
  options.lambda_l1 = config.lambda_l1;
  options.adam.lr = config.lr;
  options.adam.beta1 = config.beta1;
  return options;
}

std::shared_ptr<data::Dataset> make_dataset(const TrainConfig& config, const std::string& split, bool augment) {
  const int load_size = augment ? config.load_size : config.crop_size;
  const bool no_flip = !augment || config.no_flip;
  if (config.format == "cmp") {
    data::CmpOptions options;
    options.load_size = load_size;
    options.crop_size = config.crop_size;
    options.no_flip = no_flip;
    return std::make_shared<data::CmpDataset>(config.dataset, split, options);
  }
  data::AlignedOptions options;
  options.direction = config.direction == "BtoA" ? data::Direction::BtoA : data::Direction::AtoB;
  options.load_size = load_size;
  options.crop_size = config.crop_size;
  options.no_flip = no_flip;
  return std::make_shared<data::AlignedDataset>(config.dataset, split, options);
}

// Whether the ops have CUDA kernels in this build. They arrive with the CUDA
// backend; until then "auto" stays on the CPU even where a GPU is present.
static bool cuda_kernels_built() { return false; }

Device resolve_device(const std::string& name) {
  if (name != "auto") return Device::parse(name);
  return cuda_kernels_built() && cuda_device_count() > 0 ? Device::cuda(0) : Device::cpu();
}

}  // namespace pixgrad::training
