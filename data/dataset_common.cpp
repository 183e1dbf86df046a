// Pieces shared by the datasets: the seeded augmentation draw, image ->
// tensor conversion, and listing image files.
#include <algorithm>
#include <cctype>
#include <filesystem>

#include <pixgrad/core/error.h>
#include <pixgrad/kernels/philox.h>
#include <pixgrad/data/datasets.h>

namespace pixgrad::data {

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

Tensor image_to_tensor(const Image& image, const std::string& path, float divisor) {
  const Image rgb = to_rgb(image, path);
  const size_t plane = static_cast<size_t>(rgb.width) * rgb.height;
  Tensor tensor = Tensor::empty({3, rgb.height, rgb.width});
  float* out = tensor.data<float>();
  for (size_t i = 0; i < plane; ++i) {
    for (int c = 0; c < 3; ++c) out[c * plane + i] = rgb.pixels[3 * i + c] / divisor - 1.0f;
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

}  // namespace pixgrad::data
