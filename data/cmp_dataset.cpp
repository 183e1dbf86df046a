// The CMP Facade base set as the Chainer pix2pix example uses it: the label
// map (one-hot, 12 channels) is the input, the photo the target. The shorter
// side goes to load_size (photo bilinear, labels nearest, so that classes
// never blend), then both get the same random crop and flip.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <pixgrad/core/error.h>
#include <pixgrad/data/datasets.h>

namespace pixgrad::data {

namespace {

constexpr int kFirstClassValue = 1;  // the PNGs hold 1..12; 0 never occurs in valid files

// Checks the labels at full resolution, so that a bad value is reported where it is in the file.
void check_label_values(const Image& labels, const std::string& path) {
  const auto bad = std::find_if(labels.pixels.begin(), labels.pixels.end(), [](uint8_t value) {
    return value < kFirstClassValue || value >= kFirstClassValue + CmpDataset::kClasses;
  });
  if (bad == labels.pixels.end()) return;
  const size_t i = static_cast<size_t>(bad - labels.pixels.begin());
  fail("image '", path, "': label value ", int{*bad}, " at (", i % labels.width, ", ", i / labels.width,
       ") is outside ", kFirstClassValue, "..", kFirstClassValue + CmpDataset::kClasses - 1);
}

std::string numbered_path(const std::string& root, int number, const char* extension) {
  char name[32];
  std::snprintf(name, sizeof(name), "cmp_b%04d.%s", number, extension);
  return (std::filesystem::path(root) / name).string();
}

}  // namespace

CmpDataset::CmpDataset(const std::string& root, const std::string& split, CmpOptions options) : options_(options) {
  detail::check_crop_options("CmpDataset", options.load_size, options.crop_size);
  int first = 1, last = 378;
  if (split == "train") {
    last = 299;
  } else if (split == "test") {
    first = 300;
  } else {
    PIXGRAD_CHECK(split == "all", "CmpDataset: unknown split '", split, "' (train, test or all)");
  }
  if (options.first != 0) first = options.first;
  if (options.last != 0) last = options.last;
  PIXGRAD_CHECK(first >= 1 && first <= last && last <= 9999, "CmpDataset: invalid image range ", first, "..", last);
  std::error_code error;
  PIXGRAD_CHECK(std::filesystem::is_directory(root, error), "CmpDataset: '", root, "' is not a directory");
  // Numbers missing from the folder are skipped (the published set has gaps
  // in some copies); a photo without its label map, or the reverse, is an error.
  for (int number = first; number <= last; ++number) {
    const std::string photo = numbered_path(root, number, "jpg");
    const std::string label = numbered_path(root, number, "png");
    const bool has_photo = std::filesystem::exists(photo, error);
    const bool has_label = std::filesystem::exists(label, error);
    if (!has_photo && !has_label) continue;
    PIXGRAD_CHECK(has_photo && has_label, "CmpDataset: '", has_photo ? photo : label, "' has no matching '",
                  has_photo ? label : photo, "'");
    photos_.push_back(photo);
    labels_.push_back(label);
  }
  PIXGRAD_CHECK(!photos_.empty(), "CmpDataset: no cmp_bNNNN.jpg/.png pairs numbered ", first, "..", last, " in '",
                root, "'");
}

uint64_t CmpDataset::content_digest() const {
  std::vector<std::string> files = photos_;
  files.insert(files.end(), labels_.begin(), labels_.end());
  return digest_of_files(files);
}

Example CmpDataset::get(size_t index, uint64_t seed) const {
  detail::check_index("CmpDataset", index, photos_.size());
  const std::string& photo_path = photos_[index];
  const std::string& label_path = labels_[index];
  const Image photo = load_image(photo_path);
  const Image labels = load_label_image(label_path);
  PIXGRAD_CHECK(photo.width == labels.width && photo.height == labels.height, "image '", label_path, "': size ",
                labels.width, "x", labels.height, " differs from its photo '", photo_path, "' (", photo.width, "x",
                photo.height, ")");
  check_label_values(labels, label_path);

  const int load = options_.load_size;
  const int crop_size = options_.crop_size;
  const bool portrait = photo.width <= photo.height;
  // Integer arithmetic keeps the shorter side at exactly load_size.
  const int width = portrait ? load : static_cast<int>(int64_t{photo.width} * load / photo.height);
  const int height = portrait ? static_cast<int>(int64_t{photo.height} * load / photo.width) : load;
  const Augmentation augmentation =
      draw_augmentation(seed, index, width, height, crop_size, crop_size, !options_.no_flip,
                        options_.preprocessing.exclusive_crop_range);
  const Image photo_crop = apply_augmentation(resize_photo(photo, width, height, options_.preprocessing.resample),
                                              augmentation, crop_size, crop_size);
  const Image label_crop =
      apply_augmentation(resize_nearest(labels, width, height), augmentation, crop_size, crop_size);
  return {labels_to_one_hot(label_crop, kClasses, kFirstClassValue, label_path), image_to_tensor(photo_crop, photo_path, options_.preprocessing.pixel_divisor),
          std::filesystem::path(photo_path).stem().string()};
}

}  // namespace pixgrad::data
