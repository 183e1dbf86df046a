// Inputs only, for running a trained generator on your own images.
#include <filesystem>

#include <pixgrad/core/error.h>
#include <pixgrad/data/datasets.h>

namespace pixgrad::data {

FolderDataset::FolderDataset(const std::string& directory_or_file, FolderOptions options) : options_(options) {
  PIXGRAD_CHECK(options.load_size >= 0 && options.load_size <= kMaxImageSide, "FolderDataset: load_size ",
                options.load_size, " is outside 0..", kMaxImageSide);
  detail::check_channels("FolderDataset", "channels", options.channels);
  std::error_code error;
  if (std::filesystem::is_regular_file(directory_or_file, error)) {
    files_.push_back(directory_or_file);
  } else {
    files_ = list_image_files(directory_or_file);
  }
}

Example FolderDataset::get(size_t index, uint64_t /*seed: nothing is random here*/) const {
  detail::check_index("FolderDataset", index, files_.size());
  const std::string& path = files_[index];
  Image image = load_image(path);
  const int load = options_.load_size;
  if (load != 0 && (image.width != load || image.height != load)) image = resize_bilinear(image, load, load);
  return {image_to_tensor(image, path, 127.5f, options_.channels), Tensor(),
          std::filesystem::path(path).stem().string()};
}

}  // namespace pixgrad::data
