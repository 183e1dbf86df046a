#include <pixgrad/training/translation.h>

#include <cmath>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>
#include <pixgrad/models/networks.h>
#include <pixgrad/training/metrics.h>
#include <pixgrad/training/model_factory.h>
#include <pixgrad/training/preview.h>

namespace pixgrad::training {

namespace {

// The [C, H, W] window of width x height at the top-left of `chw` (CPU).
Tensor crop_top_left(const Tensor& chw, int64_t width, int64_t height) {
  const int64_t channels = chw.size(0), full_height = chw.size(1), full_width = chw.size(2);
  if (width == full_width && height == full_height) return chw;
  const std::vector<float> values = chw.to_vector();
  Tensor out = Tensor::empty({channels, height, width});
  float* dst = out.data<float>();
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x) *dst++ = values[(c * full_height + y) * full_width + x];
  return out;
}

// The test-time meaning of each training mode: no random crop, load size =
// crop size (as the PyTorch reference's test options set them).
data::PreprocessMode test_mode(data::PreprocessMode mode) {
  switch (mode) {
    case data::PreprocessMode::Crop: return data::PreprocessMode::None;
    case data::PreprocessMode::ScaleWidthAndCrop: return data::PreprocessMode::ScaleWidth;
    default: return mode;
  }
}

}  // namespace

Translator::Translator(const Checkpoint& checkpoint, const std::string& checkpoint_path,
                       const TranslationOptions& options, Device device)
    : config_(checkpoint.config), options_(options), device_(device) {
  const std::string named = "checkpoint '" + io::printable(checkpoint_path) + "'";
  try {
    validate(config_);
  } catch (const Error& error) {
    fail(named, ": the options stored in it: ", error.what());
  }
  mode_ = test_mode(data::parse_preprocess(options.preprocess.empty() ? config_.preprocess : options.preprocess));
  PIXGRAD_CHECK(config_.format == "aligned" || mode_ == data::PreprocessMode::ResizeAndCrop,
                "--preprocess: ", named, " reads CMP label maps, which are resized to a square");
  // The size training used: the crop's square, or scale_width's width.
  const bool scales_width = mode_ == data::PreprocessMode::ScaleWidth;
  size_ = options.size > 0 ? options.size : scales_width ? config_.load_size : config_.crop_size;
  PIXGRAD_CHECK(size_ <= data::kMaxImageSide, "--size ", size_, " exceeds ", data::kMaxImageSide);
  PIXGRAD_CHECK(std::isfinite(options.aspect_ratio) && options.aspect_ratio >= 0.0625 && options.aspect_ratio <= 16,
                "--aspect-ratio must be in [1/16, 16], got ", options.aspect_ratio);
  const std::string direction = options.direction.empty() ? config_.direction : options.direction;
  PIXGRAD_CHECK(direction == "AtoB" || direction == "BtoA", "--direction must be AtoB or BtoA, not '",
                io::printable(direction), "'");
  direction_ = direction == "BtoA" ? data::Direction::BtoA : data::Direction::AtoB;
  PIXGRAD_CHECK(!options.aligned || config_.format == "aligned", "--aligned: ", named,
                " was trained on CMP label maps, not on A|B pairs");
  preprocessing_ = preprocessing(config_);

  const models::Pix2PixOptions model = pix2pix_options(config_);
  generator_ = models::make_generator(model.preset, model.generator);
  multiple_ = model.generator.size_multiple();
  const std::map<std::string, Tensor> weights = tensors_with_prefix(checkpoint, "G.");
  PIXGRAD_CHECK(!weights.empty(), named, ": it holds no generator weights");
  check_state_values(checkpoint_path, weights, "G.", "translate with an earlier checkpoint");
  try {
    generator_->load_state_dict(weights);
  } catch (const Error& error) {
    fail(named, ": ", error.what());
  }
  generator_->to(device_);
  generator_->train(!options.eval_mode);
}

data::Image Translator::prepare(const data::Image& image, const std::string& path) const {
  // scale_width: width size_, the height keeping the aspect ratio (a crop of 1
  // lifts the training rule that the height is at least the crop).
  const data::ImageSize size = data::resized_size(mode_, image.width, image.height, size_, 1);
  PIXGRAD_CHECK(size.width >= 1 && size.height >= 1 && size.width <= data::kMaxImageSide &&
                    size.height <= data::kMaxImageSide,
                "image '", io::printable(path), "': ", image.width, "x", image.height, " would be resized to ",
                size.width, "x", size.height, " by --preprocess ", data::preprocess_name(mode_), " (sides must be in 1..",
                data::kMaxImageSide, "); try another --size or --preprocess");
  return data::resize_photo(image, size.width, size.height, preprocessing_.resample);
}

Tensor Translator::to_tensor(const data::Image& image, int64_t channels, const std::string& path) const {
  return data::image_to_tensor(image, path, preprocessing_.pixel_divisor, static_cast<int>(channels));
}

Tensor Translator::generate(const Tensor& chw, int64_t width, int64_t height) const {
  const Tensor batch = chw.reshape({1, chw.size(0), chw.size(1), chw.size(2)});
  NoGradGuard no_grad;
  const Tensor out = generator_->forward(batch.to(device_)).to(Device::cpu());
  return crop_top_left(out.reshape({out.size(1), out.size(2), out.size(3)}), width, height);
}

data::Image Translator::finish(const data::Image& image) const {
  const double ratio = options_.aspect_ratio;
  if (ratio == 1.0) return image;
  const int width = ratio > 1 ? static_cast<int>(image.width * ratio) : image.width;
  const int height = ratio < 1 ? static_cast<int>(image.height / ratio) : image.height;
  PIXGRAD_CHECK(width <= data::kMaxImageSide && height <= data::kMaxImageSide, "--aspect-ratio ", ratio, " makes a ",
                width, "x", height, " image, larger than ", data::kMaxImageSide);
  return data::resize_bicubic(image, std::max(width, 1), std::max(height, 1));
}

Translation Translator::translate(const std::string& path) const {
  Translation result;
  data::Image prepared;  // the input side, at the size it is translated at
  Tensor truth;
  if (config_.format == "cmp") {
    prepared = data::resize_nearest(data::load_label_image(path), size_, size_);
  } else {
    data::Image source = data::load_image(path);
    if (options_.aligned) {
      PIXGRAD_CHECK(source.width % 2 == 0, "image '", io::printable(path), "': width ", source.width,
                    " is odd; --aligned expects A|B halves of equal size side by side");
      const data::Image a = data::crop(source, 0, 0, source.width / 2, source.height);
      const data::Image b = data::crop(source, source.width / 2, 0, source.width / 2, source.height);
      const bool a_to_b = direction_ == data::Direction::AtoB;
      source = a_to_b ? a : b;
      truth = to_tensor(prepare(a_to_b ? b : a, path), config_.output_channels(), path);
    }
    prepared = prepare(source, path);
  }
  // Padded up to the U-Net's multiple; generate() crops the padding off again.
  const int padded_width = data::round_up_to_multiple(prepared.width, static_cast<int>(multiple_));
  const int padded_height = data::round_up_to_multiple(prepared.height, static_cast<int>(multiple_));
  PIXGRAD_CHECK(padded_width <= data::kMaxImageSide && padded_height <= data::kMaxImageSide, "image '",
                io::printable(path), "': ", prepared.width, "x", prepared.height, " padded to a multiple of ",
                multiple_, " exceeds ", data::kMaxImageSide);
  const data::Image padded = data::pad_to_size(prepared, padded_width, padded_height);
  const Tensor input = config_.format == "cmp" ? data::labels_to_one_hot(padded, 12, 1, path)
                                               : to_tensor(padded, config_.input_channels(), path);
  const Tensor generated = generate(input, prepared.width, prepared.height);
  result.input = finish(tensor_to_image(crop_top_left(input, prepared.width, prepared.height)));
  result.generated = finish(tensor_to_image(generated));
  if (truth.defined()) {
    result.truth = finish(tensor_to_image(truth));
    result.scores = Scores{mean_absolute_error(generated, truth), psnr(generated, truth), ssim(generated, truth)};
  }
  return result;
}

}  // namespace pixgrad::training
