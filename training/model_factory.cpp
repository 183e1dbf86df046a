#include <pixgrad/training/model_factory.h>

#include <pixgrad/core/error.h>
#include <pixgrad/kernels/conv_settings.h>
#include <pixgrad/kernels/cpu/conv2d.h>
#include <pixgrad/kernels/cpu/gemm.h>

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
  options.objective = models::parse_gan_objective(config.gan_mode);
  options.lambda_l1 = config.lambda_l1;
  options.adam.lr(config.lr).beta1(config.beta1);
  return options;
}

data::Preprocessing preprocessing(const TrainConfig& config) {
  data::Preprocessing pre;
  if (config.preset == "chainer") {
    // facade_dataset.py: PIL bilinear resize, x / 128 - 1, np.random.randint crop offsets.
    pre.resample = data::Resample::Bilinear;
    pre.pixel_divisor = 128.0f;
    pre.exclusive_crop_range = true;
  } else {
    // The PyTorch reference's get_transform: bicubic resize, Normalize(0.5, 0.5), random.randint offsets.
    pre.resample = data::Resample::Bicubic;
  }
  return pre;
}

std::shared_ptr<data::Dataset> make_dataset(const TrainConfig& config, const std::string& split, bool augment) {
  const int load_size = augment ? config.load_size : config.crop_size;
  // The Chainer trainer never flips.
  const bool no_flip = !augment || config.no_flip || config.preset == "chainer";
  if (config.format == "cmp") {
    data::CmpOptions options;
    options.load_size = load_size;
    options.crop_size = config.crop_size;
    options.no_flip = no_flip;
    options.preprocessing = preprocessing(config);
    return std::make_shared<data::CmpDataset>(config.dataset, split, options);
  }
  data::AlignedOptions options;
  options.direction = config.direction == "BtoA" ? data::Direction::BtoA : data::Direction::AtoB;
  options.mode = data::parse_preprocess(config.preprocess);
  options.size_multiple = static_cast<int>(pix2pix_options(config).generator.size_multiple());
  options.input_channels = static_cast<int>(config.input_channels());
  options.output_channels = static_cast<int>(config.output_channels());
  options.load_size = load_size;
  options.crop_size = config.crop_size;
  options.no_flip = no_flip;
  options.preprocessing = preprocessing(config);
  if (!augment && (options.mode == data::PreprocessMode::ScaleWidth ||
                   options.mode == data::PreprocessMode::ScaleWidthAndCrop)) {
    // The whole image at the training width, its height keeping the aspect
    // ratio (a crop size of 1 lifts scale_width's "at least the crop" rule).
    options.mode = data::PreprocessMode::ScaleWidth;
    options.load_size = config.load_size;
    options.crop_size = 1;
  }
  return std::make_shared<data::AlignedDataset>(config.dataset, split, options);
}

std::string select_conv_impl(const std::string& name) {
  if (!name.empty()) {
    try {
      kernels::set_conv_impl(kernels::parse_conv_impl(name));
    } catch (const Error& error) {
      fail("--conv-impl: ", error.what());
    }
  }
  return kernels::to_string(kernels::conv_impl());  // reads the environment when name is ""
}

std::string select_precision(const std::string& precision, bool tf32) {
  const std::string wanted = !precision.empty() ? precision : tf32 ? "tf32" : "";
  PIXGRAD_CHECK(!tf32 || wanted == "tf32", "--tf32 and --precision ", precision, " disagree");
  if (!wanted.empty()) {
    try {
      kernels::set_conv_precision(kernels::parse_conv_precision(wanted));
    } catch (const Error& error) {
      fail("--precision: ", error.what());
    }
  }
  // Reads the environment when nothing was asked for, so that a bad value fails before any work.
  return kernels::to_string(kernels::conv_precision());
}

std::string describe_convolutions(const Device& device, const std::string& precision, const std::string& conv_impl) {
  if (device.is_cuda()) return precision + " convolutions, " + conv_impl;
  const std::string in_effect = kernels::to_string(kernels::cpu::conv_precision_in_effect());
  if (precision == "bf16" && in_effect != precision)
    return in_effect + (kernels::cpu::gemm_bf16_availability() == kernels::cpu::Bf16Availability::Hidden
                            ? " convolutions: bf16 is off, PIXGRAD_CPU_BF16=0 hides AVX-512 BF16"
                            : " convolutions: bf16 needs AVX-512 BF16 (avx512_bf16), which this CPU lacks");
  return in_effect + " convolutions";
}

}  // namespace pixgrad::training
