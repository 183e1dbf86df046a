// Translating images with a trained generator at test time, as
// pix2pix_translate does: each image is prepared as the checkpoint's
// pipeline prepares test images (--preprocess with load size = crop size,
// no crop), padded up to the U-Net's multiple, translated, and cropped back,
// so that any size comes out at the size it went in. For aligned A|B pairs
// the other half is the ground truth, scored with the metrics the trainer's
// --eval-interval reports.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <pixgrad/core/device.h>
#include <pixgrad/data/datasets.h>
#include <pixgrad/models/unet_base.h>
#include <pixgrad/training/checkpoint.h>

namespace pixgrad::training {

struct TranslationOptions {
  std::string preprocess;     // "" = the checkpoint's
  int size = 0;               // resize_and_crop: size x size (0: the crop size); scale_width*: the width (0: the load size)
  bool aligned = false;       // inputs are A|B pairs
  std::string direction;      // aligned: AtoB | BtoA ("" = the checkpoint's)
  double aspect_ratio = 1.0;  // > 1 widens, < 1 heightens the written images
  bool eval_mode = false;     // running statistics and no dropout
};

struct Scores {
  double l1 = 0, psnr = 0, ssim = 0;
};

struct Translation {
  data::Image input, generated, truth;  // truth: only for aligned pairs
  std::optional<Scores> scores;         // with a truth
};

class Translator {
 public:
  // Builds the checkpoint's generator on `device`; throws a one-line error
  // naming the checkpoint for weights that do not fit or are not finite.
  Translator(const Checkpoint& checkpoint, const std::string& checkpoint_path, const TranslationOptions& options,
             Device device);
  Translation translate(const std::string& path) const;

  const TrainConfig& config() const { return config_; }
  data::PreprocessMode mode() const { return mode_; }
  int size() const { return size_; }
  data::Direction direction() const { return direction_; }

 private:
  // [C, H, W] in [-1, 1] for an image of this pipeline's input or target side.
  Tensor to_tensor(const data::Image& image, int64_t channels, const std::string& path) const;
  data::Image prepare(const data::Image& image, const std::string& path) const;
  // G(padded input), cropped back to width x height.
  Tensor generate(const Tensor& padded, int64_t width, int64_t height) const;
  data::Image finish(const data::Image& image) const;

  TrainConfig config_;
  TranslationOptions options_;
  data::PreprocessMode mode_;
  data::Direction direction_;
  data::Preprocessing preprocessing_;
  int size_ = 0;
  int64_t multiple_ = 1;
  Device device_;
  std::shared_ptr<models::UnetBase> generator_;
};

}  // namespace pixgrad::training
