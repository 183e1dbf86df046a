// Datasets: indexable collections of (input, target) examples as CPU float32
// CHW tensors scaled to [-1, 1]. An example is a pure function of
// (index, seed): every random choice of the augmentation (crop offset, flip)
// comes from Philox block `seed, index`, so a resumed run replays exactly.
// See docs/data.md for the formats.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <pixgrad/core/tensor.h>
#include <pixgrad/data/image.h>

namespace pixgrad::data {

struct Example {
  Tensor input;   // [C, H, W]
  Tensor target;  // [C, H, W]; undefined when the dataset has no targets
  std::string name;  // the file stem, e.g. "cmp_b0001"
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  virtual Example get(size_t index, uint64_t seed) const = 0;
  // A digest of what the dataset reads, without decoding it (file names and
  // sizes for the file-based datasets; 0 when a dataset cannot tell): the
  // ranks of a data-parallel run compare theirs before training together.
  virtual uint64_t content_digest() const { return 0; }
};

// The digest of a list of files: each one's name (not its folder, which may
// differ between machines) and size in bytes.
uint64_t digest_of_files(const std::vector<std::string>& files);

// The random part of an example, drawn from philox::block(seed, index).
struct Augmentation {
  int crop_x = 0;
  int crop_y = 0;
  bool flip = false;
};
// Crop offsets uniform in [0, width - crop_width] x [0, height - crop_height]
// (with `exclusive_range`, [0, width - crop_width) as numpy's randint draws
// them, 0 where that range is empty); a flip with probability 1/2 unless
// `allow_flip` is false.
Augmentation draw_augmentation(uint64_t seed, size_t index, int width, int height, int crop_width, int crop_height,
                               bool allow_flip, bool exclusive_range = false);

// How a training image is resized and cropped, as the PyTorch pix2pix's
// --preprocess (data/base_dataset.py, get_params and get_transform):
//   ResizeAndCrop      resize to load_size x load_size, then a random crop_size^2 window
//   Crop               no resize; a random crop_size^2 window
//   ScaleWidth         width to load_size, height in proportion (at least crop_size); no crop
//   ScaleWidthAndCrop  as ScaleWidth, then a random crop_size^2 window
//   None               the image as it is
// Every mode then keeps the centred window whose sides are the largest
// multiples of AlignedOptions::size_multiple, and flips.
enum class PreprocessMode { ResizeAndCrop, Crop, ScaleWidth, ScaleWidthAndCrop, None };
// "resize_and_crop", "crop", "scale_width", "scale_width_and_crop" or "none"; throws on anything else.
PreprocessMode parse_preprocess(const std::string& name);
const char* preprocess_name(PreprocessMode mode);
bool preprocess_crops(PreprocessMode mode);  // whether the mode takes a random crop_size^2 window

struct ImageSize {
  int width = 0;
  int height = 0;
};
// The size of a width x height image after the mode's resize step:
// ResizeAndCrop load x load; ScaleWidth(AndCrop) width load and height
// max(load * height / width, crop) (rounded down, as the reference's int()),
// unchanged when width == load and height >= crop; Crop and None unchanged.
ImageSize resized_size(PreprocessMode mode, int width, int height, int load_size, int crop_size);

enum class Resample { Bilinear, Bicubic };

// Where the reference pipelines differ in detail, a preset picks its own.
struct Preprocessing {
  Resample resample = Resample::Bilinear;  // photos (labels are always nearest)
  float pixel_divisor = 127.5f;            // x / divisor - 1: 127.5 (PyTorch's Normalize(0.5, 0.5)), Chainer 128
  bool exclusive_crop_range = false;       // Chainer's np.random.randint(0, w - 256)
};
Image resize_photo(const Image& image, int width, int height, Resample resample);
// Crops (and flips) as `augmentation` says.
Image apply_augmentation(const Image& image, const Augmentation& augmentation, int crop_width, int crop_height);

// An image (converted by to_channels when its count differs) -> [channels, H, W]
// float32: x / divisor - 1.
Tensor image_to_tensor(const Image& image, const std::string& path, float divisor = 127.5f, int channels = 3);
// One channel of class values in [first_value, first_value + classes) -> [classes, H, W]
// one-hot float32. Throws naming `path` and the position of any other value.
Tensor labels_to_one_hot(const Image& labels, int classes, int first_value, const std::string& path);

// Image files (.jpg, .jpeg, .png, any case) directly in `directory`, sorted by name.
std::vector<std::string> list_image_files(const std::string& directory);

namespace detail {
// Throws "<dataset>: ..." unless 0 < crop_size <= load_size <= kMaxImageSide.
void check_crop_options(const char* dataset, int load_size, int crop_size);
// The sizes `mode` uses, checked: check_crop_options for ResizeAndCrop and
// ScaleWidthAndCrop; 0 < load_size, crop_size <= kMaxImageSide for ScaleWidth;
// 0 < crop_size <= kMaxImageSide for Crop; nothing for None. A mode with a
// fixed crop also needs crop_size >= size_multiple, or no image could pass.
void check_preprocess_options(const char* dataset, PreprocessMode mode, int load_size, int crop_size,
                              int size_multiple);
// Throws "<dataset>: <option> ..." unless channels is 1, 2, 3 or 4 (see to_channels).
void check_channels(const char* dataset, const char* option, int channels);
// Throws "<dataset>: index ... is out of range" unless index < size.
void check_index(const char* dataset, size_t index, size_t size);
}  // namespace detail

enum class Direction { AtoB, BtoA };

struct AlignedOptions {
  Direction direction = Direction::AtoB;
  int load_size = 286;  // the resize of `mode` (load_size x load_size for ResizeAndCrop)
  int crop_size = 256;  // the random crop_size x crop_size window of the *Crop modes
  bool no_flip = false;
  Preprocessing preprocessing;
  PreprocessMode mode = PreprocessMode::ResizeAndCrop;
  // Each side of an example is cut (centred) to the largest multiple of this:
  // a U-Net of num_downs levels needs multiples of 2^num_downs.
  int size_multiple = 1;
  int input_channels = 3;   // channels of the input side (A for AtoB), see to_channels
  int output_channels = 3;  // channels of the target side
};

// pix2pix's "aligned" layout: root/split/*.{jpg,png}, each image A|B side by
// side. AtoB: input = A (left half), target = B; BtoA swaps them. Both halves
// get the same resize, crop, multiple window and flip, so they stay aligned.
class AlignedDataset : public Dataset {
 public:
  AlignedDataset(const std::string& root, const std::string& split, AlignedOptions options = {});
  size_t size() const override { return files_.size(); }
  Example get(size_t index, uint64_t seed) const override;
  uint64_t content_digest() const override { return digest_of_files(files_); }
  const std::vector<std::string>& files() const { return files_; }

 private:
  std::vector<std::string> files_;
  AlignedOptions options_;
};

struct CmpOptions {
  int load_size = 286;  // the shorter side is resized to load_size
  int crop_size = 256;
  bool no_flip = false;
  // Image numbers [first, last] of cmp_bNNNN; 0 takes them from the split
  // (train: 1..299, test: 300..378, all: 1..378, as the Chainer pix2pix).
  int first = 0;
  int last = 0;
  Preprocessing preprocessing;
};

// The CMP Facade "base" set: cmp_bNNNN.jpg photos (target, 3 channels) with
// cmp_bNNNN.png label maps of classes 1..12 (input, 12-channel one-hot,
// channel = class - 1).
class CmpDataset : public Dataset {
 public:
  static constexpr int kClasses = 12;
  CmpDataset(const std::string& root, const std::string& split, CmpOptions options = {});
  size_t size() const override { return photos_.size(); }
  Example get(size_t index, uint64_t seed) const override;
  uint64_t content_digest() const override;

 private:
  std::vector<std::string> photos_;
  std::vector<std::string> labels_;
  CmpOptions options_;
};

struct FolderOptions {
  int load_size = 256;  // resized to load_size x load_size; 0 keeps the size
  int channels = 3;     // see to_channels
};

// Inputs only, for translating your own images: every image file in a
// folder (sorted), or one file. Targets are undefined.
class FolderDataset : public Dataset {
 public:
  explicit FolderDataset(const std::string& directory_or_file, FolderOptions options = {});
  size_t size() const override { return files_.size(); }
  Example get(size_t index, uint64_t seed) const override;
  uint64_t content_digest() const override { return digest_of_files(files_); }

 private:
  std::vector<std::string> files_;
  FolderOptions options_;
};

}  // namespace pixgrad::data
