// pix2pix's aligned layout: one file holds A (left half) and B (right half).
// Each half is resized to load_size^2 and both get the same random crop and
// flip, so input and target stay pixel-aligned.
#include <filesystem>

#include <pixgrad/core/error.h>
#include <pixgrad/data/datasets.h>

namespace pixgrad::data {

AlignedDataset::AlignedDataset(const std::string& root, const std::string& split, AlignedOptions options)
    : options_(options) {
  detail::check_crop_options("AlignedDataset", options.load_size, options.crop_size);
  files_ = list_image_files((std::filesystem::path(root) / split).string());
}

Example AlignedDataset::get(size_t index, uint64_t seed) const {
  detail::check_index("AlignedDataset", index, files_.size());
  const std::string& path = files_[index];
  const Image both = load_image(path);
  PIXGRAD_CHECK(both.width % 2 == 0, "image '", path, "': width ", both.width,
                " is odd; expected A|B side by side");
  const int half = both.width / 2;
  const int load = options_.load_size;
  const int crop_size = options_.crop_size;
  auto prepare = [&](int x) {
    const Image side = crop(both, x, 0, half, both.height);
    return resize_photo(side, load, load, options_.preprocessing.resample);
  };
  const Image a = prepare(0);
  const Image b = prepare(half);
  const Preprocessing& pre = options_.preprocessing;
  const Augmentation augmentation = draw_augmentation(seed, index, load, load, crop_size, crop_size, !options_.no_flip,
                                                      pre.exclusive_crop_range);
  Tensor a_tensor = image_to_tensor(apply_augmentation(a, augmentation, crop_size, crop_size), path, pre.pixel_divisor);
  Tensor b_tensor = image_to_tensor(apply_augmentation(b, augmentation, crop_size, crop_size), path, pre.pixel_divisor);
  const std::string name = std::filesystem::path(path).stem().string();
  if (options_.direction == Direction::AtoB) return {a_tensor, b_tensor, name};
  return {b_tensor, a_tensor, name};
}

}  // namespace pixgrad::data
