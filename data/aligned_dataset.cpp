// pix2pix's aligned layout: one file holds A (left half) and B (right half).
// Both halves go through the same geometry (resize, crop, multiple window,
// flip), so input and target stay pixel-aligned.
#include <filesystem>

#include <pixgrad/core/error.h>
#include <pixgrad/data/datasets.h>

namespace pixgrad::data {

namespace {

// Where an example's pixels come from, the same for both halves: each half is
// resized to `resized`, then the `window` at (placement.crop_x, crop_y) is
// kept, then flipped if placement.flip.
struct Geometry {
  ImageSize resized;
  ImageSize window;
  Augmentation placement;
};

Geometry plan_geometry(const AlignedOptions& options, const std::string& path, ImageSize half, uint64_t seed,
                       size_t index) {
  const char* mode = preprocess_name(options.mode);
  const int crop_size = options.crop_size;
  Geometry geometry;
  geometry.resized = resized_size(options.mode, half.width, half.height, options.load_size, crop_size);
  // Only scale_width can grow a side past the decoder's limit (a tall, narrow image).
  PIXGRAD_CHECK(geometry.resized.height <= kMaxImageSide, "image '", path, "': each half (", half.width, "x",
                half.height, ") would be ", geometry.resized.width, "x", geometry.resized.height, " after --preprocess ",
                mode, ", over ", kMaxImageSide, " pixels a side; use a smaller load size");
  const bool crops = preprocess_crops(options.mode);
  // Only --preprocess crop can meet an image smaller than its crop (the
  // reference would pad it with black there).
  PIXGRAD_CHECK(!crops || (geometry.resized.width >= crop_size && geometry.resized.height >= crop_size), "image '",
                path, "': each half is ", half.width, "x", half.height, ", smaller than the ", crop_size, "x",
                crop_size, " crop of --preprocess ", mode, "; use --preprocess resize_and_crop or a smaller crop size");
  const ImageSize cropped = crops ? ImageSize{crop_size, crop_size} : geometry.resized;
  geometry.placement = draw_augmentation(seed, index, geometry.resized.width, geometry.resized.height, cropped.width,
                                         cropped.height, !options.no_flip, options.preprocessing.exclusive_crop_range);

  // A U-Net halves each side num_downs times, so it needs multiples of
  // 2^num_downs: keep the centred window of the largest multiples.
  const int multiple = options.size_multiple;
  PIXGRAD_CHECK(cropped.width >= multiple && cropped.height >= multiple, "image '", path, "': each half (",
                half.width, "x", half.height, " in the file) is ", cropped.width, "x", cropped.height,
                " after --preprocess ", mode, ", smaller than the multiple of ", multiple,
                " the generator needs; use --preprocess resize_and_crop or fewer --num-downs");
  geometry.window = {cropped.width / multiple * multiple, cropped.height / multiple * multiple};
  geometry.placement.crop_x += (cropped.width - geometry.window.width) / 2;
  geometry.placement.crop_y += (cropped.height - geometry.window.height) / 2;
  return geometry;
}

}  // namespace

AlignedDataset::AlignedDataset(const std::string& root, const std::string& split, AlignedOptions options)
    : options_(options) {
  detail::check_preprocess_options("AlignedDataset", options.mode, options.load_size, options.crop_size,
                                   options.size_multiple);
  detail::check_channels("AlignedDataset", "input_channels", options.input_channels);
  detail::check_channels("AlignedDataset", "output_channels", options.output_channels);
  files_ = list_image_files((std::filesystem::path(root) / split).string());
}

Example AlignedDataset::get(size_t index, uint64_t seed) const {
  detail::check_index("AlignedDataset", index, files_.size());
  const std::string& path = files_[index];
  const Image both = load_image(path);
  PIXGRAD_CHECK(both.width % 2 == 0, "image '", path, "': width ", both.width,
                " is odd; expected A|B side by side");
  const int half = both.width / 2;
  const Geometry geometry = plan_geometry(options_, path, {half, both.height}, seed, index);
  const Preprocessing& pre = options_.preprocessing;
  // Channels are converted first, as the reference's Grayscale(1) comes before its resize.
  auto prepare = [&](int x, int channels) {
    const Image side = to_channels(crop(both, x, 0, half, both.height), channels, path);
    const Image resized = resize_photo(side, geometry.resized.width, geometry.resized.height, pre.resample);
    const Image kept = apply_augmentation(resized, geometry.placement, geometry.window.width, geometry.window.height);
    return image_to_tensor(kept, path, pre.pixel_divisor, channels);
  };
  const bool a_is_input = options_.direction == Direction::AtoB;
  Tensor a = prepare(0, a_is_input ? options_.input_channels : options_.output_channels);
  Tensor b = prepare(half, a_is_input ? options_.output_channels : options_.input_channels);
  const std::string name = std::filesystem::path(path).stem().string();
  if (a_is_input) return {a, b, name};
  return {b, a, name};
}

}  // namespace pixgrad::data
