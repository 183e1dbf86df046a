// Tensors to images and preview grids.
#include <pixgrad/training/preview.h>

#include <algorithm>
#include <cmath>

#include <pixgrad/core/error.h>

namespace pixgrad::training {

namespace {

// The CMP base set's own palette, entries 1..12 (class value - 1 here).
constexpr uint8_t kPalette[kLabelColours][3] = {
    {0, 0, 170},   {0, 0, 255},   {0, 85, 255},  {0, 170, 255}, {0, 255, 255}, {85, 255, 170},
    {170, 255, 85}, {255, 255, 0}, {255, 170, 0}, {255, 85, 0},  {255, 0, 0},   {170, 0, 0}};

struct Planes {
  int channels, height, width;
  std::vector<float> values;  // CHW
};

Planes host_planes(const char* op, const Tensor& tensor) {
  check_nonempty(op, tensor);
  const Shape& shape = tensor.shape();
  const bool batched = shape.size() == 4 && shape[0] == 1;
  PIXGRAD_CHECK(shape.size() == 3 || batched, op, ": expected [C, H, W] or [1, C, H, W], got ", shape_str(shape));
  const size_t first = batched ? 1 : 0;
  return {static_cast<int>(shape[first]), static_cast<int>(shape[first + 1]), static_cast<int>(shape[first + 2]),
          tensor.to_vector()};
}

// 3 channels for the grid: grey replicated, and alpha applied as the cover
// over the black canvas (a transparent pixel shows the canvas, not the
// colour it happened to store).
Image composite_on_black(const Image& image) {
  PIXGRAD_CHECK(image.channels >= 1 && image.channels <= 4, "make_grid: an image of ", image.channels,
                " channels (expected 1 to 4)");
  const bool has_alpha = image.channels == 2 || image.channels == 4;
  const int colours = has_alpha ? image.channels - 1 : image.channels;
  const size_t count = static_cast<size_t>(image.width) * image.height;
  Image rgb(image.width, image.height, 3);
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* pixel = &image.pixels[i * image.channels];
    const unsigned alpha = has_alpha ? pixel[image.channels - 1] : 255u;
    for (int c = 0; c < 3; ++c) {
      const unsigned value = pixel[colours == 1 ? 0 : c];
      rgb.pixels[i * 3 + c] = static_cast<uint8_t>((value * alpha + 127) / 255);
    }
  }
  return rgb;
}

}  // namespace

const uint8_t* label_colour(int channel) {
  PIXGRAD_CHECK(channel >= 0 && channel < kLabelColours, "label_colour: class ", channel, " is outside 0..",
                kLabelColours - 1);
  return kPalette[channel];
}

Image label_map_to_color(const Tensor& one_hot_chw) {
  const Planes planes = host_planes("label_map_to_color", one_hot_chw);
  PIXGRAD_CHECK(planes.channels <= kLabelColours, "label_map_to_color: ", planes.channels,
                " classes, but the palette has ", kLabelColours);
  const size_t plane = static_cast<size_t>(planes.width) * planes.height;
  Image image(planes.width, planes.height, 3);
  for (size_t i = 0; i < plane; ++i) {
    int best = 0;
    for (int c = 1; c < planes.channels; ++c) {
      if (planes.values[c * plane + i] > planes.values[best * plane + i]) best = c;
    }
    std::copy_n(kPalette[best], 3, &image.pixels[3 * i]);
  }
  return image;
}

Image tensor_to_image(const Tensor& chw_in_minus1_1) {
  const Planes planes = host_planes("tensor_to_image", chw_in_minus1_1);
  // Up to four channels are pictures; more can only be one-hot classes.
  if (planes.channels > 4) return label_map_to_color(chw_in_minus1_1);
  const size_t plane = static_cast<size_t>(planes.width) * planes.height;
  Image image(planes.width, planes.height, planes.channels);
  for (size_t i = 0; i < plane; ++i) {
    for (int c = 0; c < planes.channels; ++c) {
      const float value = (planes.values[c * plane + i] + 1.0f) * 127.5f;
      // NaN compares false, so it lands on 0 rather than in undefined behaviour.
      image.pixels[i * planes.channels + c] =
          static_cast<uint8_t>(value > 0.0f ? std::lround(std::min(value, 255.0f)) : 0);
    }
  }
  return image;
}

Image make_grid(const std::vector<std::vector<Image>>& rows, int padding) {
  PIXGRAD_CHECK(padding >= 0, "make_grid: negative padding ", padding);
  int cell_width = 0, cell_height = 0;
  size_t columns = 0;
  for (const std::vector<Image>& row : rows) {
    columns = std::max(columns, row.size());
    for (const Image& image : row) {
      cell_width = std::max(cell_width, image.width);
      cell_height = std::max(cell_height, image.height);
    }
  }
  PIXGRAD_CHECK(columns > 0 && cell_width > 0 && cell_height > 0, "make_grid: no images");
  const int64_t width = static_cast<int64_t>(columns) * (cell_width + padding) + padding;
  const int64_t height = static_cast<int64_t>(rows.size()) * (cell_height + padding) + padding;
  PIXGRAD_CHECK(width <= data::kMaxImageSide && height <= data::kMaxImageSide, "make_grid: the grid would be ", width, "x",
                height, ", over ", data::kMaxImageSide, " a side");
  Image grid(static_cast<int>(width), static_cast<int>(height), 3);
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < rows[r].size(); ++c) {
      const Image rgb = composite_on_black(rows[r][c]);
      // Centred in its cell, so that smaller images line up with their neighbours.
      const int left = padding + static_cast<int>(c) * (cell_width + padding) + (cell_width - rgb.width) / 2;
      const int top = padding + static_cast<int>(r) * (cell_height + padding) + (cell_height - rgb.height) / 2;
      for (int y = 0; y < rgb.height; ++y) {
        std::copy_n(&rgb.pixels[static_cast<size_t>(y) * rgb.width * 3], static_cast<size_t>(rgb.width) * 3,
                    &grid.at(left, top + y, 0));
      }
    }
  }
  return grid;
}

}  // namespace pixgrad::training
