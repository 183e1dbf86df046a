// 8-bit images in memory (HWC, row-major) and the few operations the data
// pipeline needs: decode JPEG/PNG, read label PNGs as raw class indices,
// write PNG, resize, crop, flip. Every failure is a pixgrad::Error reading
// "image '<path>': <problem>".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pixgrad::data {

struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels, HWC

  Image() = default;
  Image(int width, int height, int channels, uint8_t fill = 0);

  uint8_t& at(int x, int y, int channel) { return pixels[(static_cast<size_t>(y) * width + x) * channels + channel]; }
  uint8_t at(int x, int y, int channel) const {
    return pixels[(static_cast<size_t>(y) * width + x) * channels + channel];
  }
};

// Files larger than this are refused before decoding (a facade photo is < 1 MiB).
constexpr size_t kMaxImageFileBytes = size_t{64} << 20;
// Widest / tallest image accepted; checked from the header, before the full decode.
constexpr int kMaxImageSide = 8192;

// Decodes a JPEG or PNG with its own channel count (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA;
// a JPEG is 1 or 3). The file must be a regular file of at most kMaxImageFileBytes.
Image load_image(const std::string& path);
// The same for a file's bytes in memory; `name` stands for the path in errors.
Image decode_image(const std::string& name, const std::vector<uint8_t>& bytes);

// Reads a label PNG as one channel of raw values: the palette index for a
// palette PNG (not the colour it maps to), the grey value for an 8-bit
// greyscale PNG. Anything else (RGB, 16-bit, JPEG) is refused, because its
// values are not class numbers.
Image load_label_image(const std::string& path);
Image decode_label_image(const std::string& name, const std::vector<uint8_t>& bytes);

// Writes a 1-, 2-, 3- or 4-channel PNG atomically (to path + ".tmp", then renamed).
void save_png(const std::string& path, const Image& image);

// 3 channels: grey is replicated, alpha dropped. `path` names the source in errors.
Image to_rgb(const Image& image, const std::string& path = "<memory>");

// Bilinear resampling with half-pixel centres, as PIL's BILINEAR: when shrinking,
// the triangle filter widens with the scale so that every source pixel counts
// (antialiased); when enlarging it equals PyTorch's align_corners=False.
Image resize_bilinear(const Image& image, int width, int height);
// Nearest neighbour with half-pixel centres (PIL NEAREST, PyTorch "nearest-exact"):
// output pixel x samples source floor((x + 0.5) * in / out). Keeps label values intact.
Image resize_nearest(const Image& image, int width, int height);
// Keys' cubic (a = -0.5) with PIL's antialiasing when shrinking: the
// PyTorch pix2pix's BICUBIC resize.
Image resize_bicubic(const Image& image, int width, int height);
// The width x height window whose top-left corner is (x, y); must lie inside the image.
Image crop(const Image& image, int x, int y, int width, int height);
Image flip_horizontal(const Image& image);

}  // namespace pixgrad::data
