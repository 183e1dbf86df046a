// 8-bit images in memory (HWC, row-major) and the few operations the data
// pipeline needs: decode JPEG/PNG, read label PNGs as raw class indices,
// write PNG, convert channels, resize, crop, flip, pad. Every failure is a
// pixgrad::Error reading "image '<path>': <problem>".
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

// `channels` channels: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA. Colour becomes
// grey by ITU-R 601 luma with PIL's "L" rounding, (19595 r + 38470 g + 7471 b
// + 0x8000) >> 16, so a grey image made colour and back is unchanged; grey is
// replicated into colour; alpha is dropped, or added opaque (255) where the
// image has none. `path` names the source in errors.
Image to_channels(const Image& image, int channels, const std::string& path);
// 3 channels: to_channels(image, 3, path).
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

// The image grown on the right and bottom to width x height (each at least its
// own), for a generator that needs sides of a multiple; its output is then
// cropped back to the image's size. A side is mirrored about its last pixel,
// which is not repeated (x = w, w + 1, ... copy x = w - 2, w - 3, ...; numpy's
// "reflect"), so the texture goes on without a hard edge, when the image is
// large enough (added <= side - 1); otherwise that side repeats its edge pixel.
Image pad_to_size(const Image& image, int width, int height);
// The smallest multiple of `multiple` (>= 1) that is >= value (>= 0).
int round_up_to_multiple(int value, int multiple);

}  // namespace pixgrad::data
