// Pieces shared by the datasets: the preprocess modes, the seeded
// augmentation draw, image -> tensor conversion, and listing image files.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <utility>

#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>
#include <pixgrad/core/fnv1a.h>
#include <pixgrad/kernels/philox.h>
#include <pixgrad/data/datasets.h>

namespace pixgrad::data {

namespace {

constexpr std::pair<PreprocessMode, const char*> kPreprocessNames[] = {
    {PreprocessMode::ResizeAndCrop, "resize_and_crop"},
    {PreprocessMode::Crop, "crop"},
    {PreprocessMode::ScaleWidth, "scale_width"},
    {PreprocessMode::ScaleWidthAndCrop, "scale_width_and_crop"},
    {PreprocessMode::None, "none"},
};

}  // namespace

PreprocessMode parse_preprocess(const std::string& name) {
  for (const auto& [mode, mode_name] : kPreprocessNames) {
    if (name == mode_name) return mode;
  }
  fail("--preprocess must be resize_and_crop, crop, scale_width, scale_width_and_crop or none, not '",
       io::printable(name), "'");
}

const char* preprocess_name(PreprocessMode mode) {
  for (const auto& [known, name] : kPreprocessNames) {
    if (known == mode) return name;
  }
  fail("preprocess_name: unknown mode ", static_cast<int>(mode));
}

bool preprocess_crops(PreprocessMode mode) {
  return mode == PreprocessMode::ResizeAndCrop || mode == PreprocessMode::Crop ||
         mode == PreprocessMode::ScaleWidthAndCrop;
}

ImageSize resized_size(PreprocessMode mode, int width, int height, int load_size, int crop_size) {
  PIXGRAD_CHECK(width > 0 && height > 0, "resized_size: empty image ", width, "x", height);
  switch (mode) {
    case PreprocessMode::ResizeAndCrop:
      return {load_size, load_size};
    case PreprocessMode::ScaleWidth:
    case PreprocessMode::ScaleWidthAndCrop: {
      // base_dataset.py __scale_width: the image is kept when it already has
      // the width and is tall enough for the crop; the height never drops below it.
      if (width == load_size && height >= crop_size) return {width, height};
      const int64_t proportional = int64_t{load_size} * height / width;
      return {load_size, static_cast<int>(std::max<int64_t>(proportional, crop_size))};
    }
    case PreprocessMode::Crop:
    case PreprocessMode::None:
      return {width, height};
  }
  fail("resized_size: unknown mode ", static_cast<int>(mode));
}

Augmentation draw_augmentation(uint64_t seed, size_t index, int width, int height, int crop_width, int crop_height,
                               bool allow_flip, bool exclusive_range) {
  PIXGRAD_CHECK(crop_width <= width && crop_height <= height, "augmentation: crop ", crop_width, "x", crop_height,
                " is larger than the ", width, "x", height, " image");
  // One Philox block per example: word 0 -> x, word 1 -> y, word 2 -> flip.
  // The modulo bias is below 2^-19 for any image side we accept (<= 8192).
  const philox::Block block = philox::block(seed, index);
  Augmentation augmentation;
  const int extra = exclusive_range ? 0 : 1;
  const auto range = [&](int size, int crop) { return static_cast<uint32_t>(std::max(1, size - crop + extra)); };
  augmentation.crop_x = static_cast<int>(block.word[0] % range(width, crop_width));
  augmentation.crop_y = static_cast<int>(block.word[1] % range(height, crop_height));
  augmentation.flip = allow_flip && (block.word[2] >> 31) != 0;
  return augmentation;
}

Image apply_augmentation(const Image& image, const Augmentation& augmentation, int crop_width, int crop_height) {
  Image cropped = crop(image, augmentation.crop_x, augmentation.crop_y, crop_width, crop_height);
  return augmentation.flip ? flip_horizontal(cropped) : cropped;
}

Image resize_photo(const Image& image, int width, int height, Resample resample) {
  if (image.width == width && image.height == height) return image;
  return resample == Resample::Bicubic ? resize_bicubic(image, width, height) : resize_bilinear(image, width, height);
}

Tensor image_to_tensor(const Image& image, const std::string& path, float divisor, int channels) {
  if (image.channels != channels) return image_to_tensor(to_channels(image, channels, path), path, divisor, channels);
  const size_t plane = static_cast<size_t>(image.width) * image.height;
  Tensor tensor = Tensor::empty({channels, image.height, image.width});
  float* out = tensor.data<float>();
  for (size_t i = 0; i < plane; ++i) {
    for (int c = 0; c < channels; ++c) out[c * plane + i] = image.pixels[channels * i + c] / divisor - 1.0f;
  }
  return tensor;
}

Tensor labels_to_one_hot(const Image& labels, int classes, int first_value, const std::string& path) {
  PIXGRAD_CHECK(labels.channels == 1, "image '", path, "': a label map needs 1 channel, not ", labels.channels);
  const size_t plane = static_cast<size_t>(labels.width) * labels.height;
  Tensor tensor = Tensor::zeros({classes, labels.height, labels.width});
  float* out = tensor.data<float>();
  for (size_t i = 0; i < plane; ++i) {
    const int value = labels.pixels[i];
    const int channel = value - first_value;
    PIXGRAD_CHECK(channel >= 0 && channel < classes, "image '", path, "': label value ", value, " at (",
                  i % labels.width, ", ", i / labels.width, ") is outside ", first_value, "..",
                  first_value + classes - 1);
    out[channel * plane + i] = 1.0f;
  }
  return tensor;
}

namespace detail {

void check_crop_options(const char* dataset, int load_size, int crop_size) {
  PIXGRAD_CHECK(crop_size > 0 && crop_size <= load_size && load_size <= kMaxImageSide, dataset,
                ": need 0 < crop_size <= load_size <= ", kMaxImageSide, ", got crop_size ", crop_size,
                " and load_size ", load_size);
}

void check_preprocess_options(const char* dataset, PreprocessMode mode, int load_size, int crop_size,
                              int size_multiple) {
  PIXGRAD_CHECK(size_multiple >= 1 && size_multiple <= kMaxImageSide, dataset, ": size_multiple ", size_multiple,
                " is outside 1..", kMaxImageSide);
  const char* name = preprocess_name(mode);
  switch (mode) {
    case PreprocessMode::ResizeAndCrop:
    case PreprocessMode::ScaleWidthAndCrop:
      check_crop_options(dataset, load_size, crop_size);
      break;
    case PreprocessMode::ScaleWidth:
      PIXGRAD_CHECK(load_size > 0 && load_size <= kMaxImageSide && crop_size > 0 && crop_size <= kMaxImageSide,
                    dataset, ": --preprocess ", name, " needs load_size and crop_size in 1..", kMaxImageSide,
                    ", got ", load_size, " and ", crop_size);
      break;
    case PreprocessMode::Crop:
      PIXGRAD_CHECK(crop_size > 0 && crop_size <= kMaxImageSide, dataset, ": --preprocess ", name,
                    " needs crop_size in 1..", kMaxImageSide, ", got ", crop_size);
      break;
    case PreprocessMode::None:
      break;
  }
  PIXGRAD_CHECK(!preprocess_crops(mode) || crop_size >= size_multiple, dataset, ": crop_size ", crop_size,
                " is smaller than the size multiple ", size_multiple, " the generator needs; raise crop_size or use",
                " fewer --num-downs");
}

void check_channels(const char* dataset, const char* option, int channels) {
  PIXGRAD_CHECK(channels >= 1 && channels <= 4, dataset, ": ", option, " ", channels,
                " is not 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA)");
}

void check_index(const char* dataset, size_t index, size_t size) {
  PIXGRAD_CHECK(index < size, dataset, ": index ", index, " is out of range for ", size, " examples");
}

}  // namespace detail

std::vector<std::string> list_image_files(const std::string& directory) {
  namespace fs = std::filesystem;
  std::error_code error;
  PIXGRAD_CHECK(fs::is_directory(directory, error), "dataset: '", directory, "' is not a directory");
  std::vector<std::string> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(directory, error)) {
    if (!entry.is_regular_file(error)) continue;
    std::string extension = entry.path().extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (extension == ".jpg" || extension == ".jpeg" || extension == ".png") files.push_back(entry.path().string());
  }
  PIXGRAD_CHECK(!error, "dataset: cannot list '", directory, "': ", error.message());
  PIXGRAD_CHECK(!files.empty(), "dataset: no .jpg, .jpeg or .png files in '", directory, "'");
  // By full name, as pix2pix's sorted(): "1.jpg", "10.jpg", "100.jpg", "2.jpg".
  std::sort(files.begin(), files.end());
  return files;
}

uint64_t digest_of_files(const std::vector<std::string>& files) {
  uint64_t hash = kFnv1aOffset;  // over "name\0size\0" of each file
  const auto mix = [&hash](const std::string& text) { hash = fnv1a(text.c_str(), text.size() + 1, hash); };
  for (const std::string& file : files) {
    std::error_code error;
    const uintmax_t bytes = std::filesystem::file_size(file, error);
    mix(std::filesystem::path(file).filename().string());
    mix(error ? std::string("?") : std::to_string(bytes));
  }
  return hash;
}

}  // namespace pixgrad::data
