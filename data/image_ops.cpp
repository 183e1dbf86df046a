// Geometric operations on 8-bit images: resampling, cropping, flipping,
// padding and channel conversion. Plain loops; the data pipeline runs them on worker threads.
#include <algorithm>
#include <cmath>
#include <limits>

#include <pixgrad/core/error.h>
#include <pixgrad/data/image.h>

namespace pixgrad::data {

namespace {

void check_target_size(const char* op, const Image& image, int width, int height) {
  PIXGRAD_CHECK(image.width > 0 && image.height > 0, op, ": empty source image ", image.width, "x", image.height);
  PIXGRAD_CHECK(width > 0 && height > 0 && width <= kMaxImageSide && height <= kMaxImageSide, op,
                ": invalid output size ", width, "x", height);
}

// One output coordinate's contributions: source pixels [first, first + weights.size()).
struct Taps {
  int first = 0;
  std::vector<float> weights;
};

// The resampling kernels, as functions of the distance in (scaled) pixels.
double triangle(double d) { return std::max(0.0, 1.0 - std::abs(d)); }
// Keys' cubic with a = -0.5 (PIL's BICUBIC, which the PyTorch pix2pix uses).
double cubic(double d) {
  constexpr double a = -0.5;
  d = std::abs(d);
  if (d < 1) return ((a + 2) * d - (a + 3)) * d * d + 1;
  if (d < 2) return (((d - 5) * d + 8) * d - 4) * a;
  return 0;
}

// Output pixel i has its centre at (i + 0.5) * scale in source coordinates;
// source pixel j at j + 0.5. The kernel (of half-width `support`) is stretched
// by max(scale, 1), so shrinking averages over every source pixel under the
// output pixel (antialiasing), as PIL does.
template <typename Kernel>
std::vector<Taps> filter_taps(int in_size, int out_size, double support, Kernel kernel) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double stretch = std::max(scale, 1.0);
  const double radius = support * stretch;
  std::vector<Taps> taps(out_size);
  for (int i = 0; i < out_size; ++i) {
    const double centre = (i + 0.5) * scale;
    const int first = std::max(0, static_cast<int>(std::floor(centre - radius)));
    const int last = std::min(in_size - 1, static_cast<int>(std::ceil(centre + radius)));
    // The source pixel under the centre always has a positive weight, so total > 0.
    double total = 0;
    std::vector<double> weights;
    for (int j = first; j <= last; ++j) {
      const double w = kernel((j + 0.5 - centre) / stretch);
      weights.push_back(w);
      total += w;
    }
    taps[i].first = first;
    for (double w : weights) taps[i].weights.push_back(static_cast<float>(w / total));
  }
  return taps;
}

// Separable resampling: the rows into a float buffer, then the columns, rounding once.
Image resample(const Image& image, int width, int height, const std::vector<Taps>& columns,
               const std::vector<Taps>& rows) {
  const int channels = image.channels;
  std::vector<float> horizontal(static_cast<size_t>(image.height) * width * channels);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < width; ++x) {
      const Taps& taps = columns[x];
      for (int c = 0; c < channels; ++c) {
        float sum = 0;
        for (size_t k = 0; k < taps.weights.size(); ++k) {
          sum += taps.weights[k] * image.at(taps.first + static_cast<int>(k), y, c);
        }
        horizontal[(static_cast<size_t>(y) * width + x) * channels + c] = sum;
      }
    }
  }
  Image out(width, height, channels);
  for (int y = 0; y < height; ++y) {
    const Taps& taps = rows[y];
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        float sum = 0;
        for (size_t k = 0; k < taps.weights.size(); ++k) {
          sum += taps.weights[k] * horizontal[((taps.first + k) * width + x) * channels + c];
        }
        out.at(x, y, c) = static_cast<uint8_t>(std::clamp(std::lround(sum), 0L, 255L));
      }
    }
  }
  return out;
}

// A source pixel of `channels` channels seen as grey, colour or alpha.
uint8_t grey_of(const uint8_t* pixel, int channels) {
  if (channels <= 2) return pixel[0];
  // PIL's convert("L"): ITU-R 601-2 luma in 16-bit fixed point, rounded to nearest.
  return static_cast<uint8_t>((pixel[0] * 19595u + pixel[1] * 38470u + pixel[2] * 7471u + 0x8000u) >> 16);
}
uint8_t colour_of(const uint8_t* pixel, int channels, int c) { return pixel[channels <= 2 ? 0 : c]; }
uint8_t alpha_of(const uint8_t* pixel, int channels) {
  return channels == 2 || channels == 4 ? pixel[channels - 1] : uint8_t{255};
}

// For each position of a side of `size` pixels grown to `padded`, the source
// position: a mirror about the last pixel while it reaches, else that pixel.
std::vector<int> padded_positions(int size, int padded) {
  const bool mirror = padded - size <= size - 1;
  std::vector<int> positions(padded);
  for (int i = 0; i < padded; ++i) positions[i] = i < size ? i : mirror ? 2 * (size - 1) - i : size - 1;
  return positions;
}

}  // namespace

Image resize_bilinear(const Image& image, int width, int height) {
  check_target_size("resize_bilinear", image, width, height);
  return resample(image, width, height, filter_taps(image.width, width, 1.0, triangle),
                  filter_taps(image.height, height, 1.0, triangle));
}

Image resize_bicubic(const Image& image, int width, int height) {
  check_target_size("resize_bicubic", image, width, height);
  return resample(image, width, height, filter_taps(image.width, width, 2.0, cubic),
                  filter_taps(image.height, height, 2.0, cubic));
}

Image resize_nearest(const Image& image, int width, int height) {
  check_target_size("resize_nearest", image, width, height);
  Image out(width, height, image.channels);
  for (int y = 0; y < height; ++y) {
    const int source_y = std::min(image.height - 1, static_cast<int>((y + 0.5) * image.height / height));
    for (int x = 0; x < width; ++x) {
      const int source_x = std::min(image.width - 1, static_cast<int>((x + 0.5) * image.width / width));
      for (int c = 0; c < image.channels; ++c) out.at(x, y, c) = image.at(source_x, source_y, c);
    }
  }
  return out;
}

Image crop(const Image& image, int x, int y, int width, int height) {
  PIXGRAD_CHECK(x >= 0 && y >= 0 && width > 0 && height > 0 && x + width <= image.width &&
                    y + height <= image.height,
                "crop: window ", width, "x", height, " at (", x, ", ", y, ") does not fit a ", image.width, "x",
                image.height, " image");
  Image out(width, height, image.channels);
  const size_t row_bytes = static_cast<size_t>(width) * image.channels;
  for (int row = 0; row < height; ++row) {
    const uint8_t* source = &image.pixels[(static_cast<size_t>(y + row) * image.width + x) * image.channels];
    std::copy(source, source + row_bytes, &out.pixels[row * row_bytes]);
  }
  return out;
}

Image flip_horizontal(const Image& image) {
  Image out = image;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      for (int c = 0; c < image.channels; ++c) out.at(x, y, c) = image.at(image.width - 1 - x, y, c);
    }
  }
  return out;
}

Image to_channels(const Image& image, int channels, const std::string& path) {
  PIXGRAD_CHECK(image.channels >= 1 && image.channels <= 4, "image '", path, "': unsupported channel count ",
                image.channels);
  PIXGRAD_CHECK(channels >= 1 && channels <= 4, "image '", path, "': cannot convert to ", channels,
                " channels (1 grey, 2 grey + alpha, 3 RGB or 4 RGBA)");
  if (image.channels == channels) return image;
  Image out(image.width, image.height, channels);
  const bool grey = channels <= 2;
  const int colours = grey ? 1 : 3;
  const size_t count = static_cast<size_t>(image.width) * image.height;
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* source = &image.pixels[i * image.channels];
    uint8_t* target = &out.pixels[i * channels];
    for (int c = 0; c < colours; ++c) {
      target[c] = grey ? grey_of(source, image.channels) : colour_of(source, image.channels, c);
    }
    if (channels % 2 == 0) target[colours] = alpha_of(source, image.channels);
  }
  return out;
}

Image to_rgb(const Image& image, const std::string& path) { return to_channels(image, 3, path); }

Image pad_to_size(const Image& image, int width, int height) {
  PIXGRAD_CHECK(image.width > 0 && image.height > 0 && width >= image.width && height >= image.height,
                "pad_to_size: cannot pad a ", image.width, "x", image.height, " image to ", width, "x", height);
  const std::vector<int> columns = padded_positions(image.width, width);
  const std::vector<int> rows = padded_positions(image.height, height);
  Image out(width, height, image.channels);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < image.channels; ++c) out.at(x, y, c) = image.at(columns[x], rows[y], c);
    }
  }
  return out;
}

int round_up_to_multiple(int value, int multiple) {
  PIXGRAD_CHECK(value >= 0 && multiple >= 1, "round_up_to_multiple: need value >= 0 and multiple >= 1, got ", value,
                " and ", multiple);
  const int64_t rounded = (int64_t{value} + multiple - 1) / multiple * multiple;
  PIXGRAD_CHECK(rounded <= std::numeric_limits<int>::max(), "round_up_to_multiple: ", value,
                " rounded up to a multiple of ", multiple, " overflows int");
  return static_cast<int>(rounded);
}

}  // namespace pixgrad::data
