// Pictures for people: tensors back to images, preview grids of
// input | generated | ground truth, and the training-loss chart.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <pixgrad/core/tensor.h>
#include <pixgrad/data/image.h>

namespace pixgrad::training {

using data::Image;

// Colour of class c (0-based channel of a one-hot map): the CMP facade
// palette, so CMP previews look like the label renderings of the facades set.
constexpr int kLabelColours = 12;
const uint8_t* label_colour(int channel);

// [C, H, W] (or [1, C, H, W]) one-hot or class scores with C <= 12 -> RGB of each pixel's argmax class.
Image label_map_to_color(const Tensor& one_hot_chw);
// [C, H, W] (or [1, C, H, W]) in [-1, 1] -> 8-bit, clamped. C = 1..4 keeps the
// channels (grey, grey + alpha, RGB, RGBA); 5..12 are label maps, drawn
// with label_map_to_color.
// Any device.
Image tensor_to_image(const Tensor& chw_in_minus1_1);
// Rows of images (e.g. input | generated | ground truth) on a black canvas,
// each in a cell as large as the largest image, `padding` pixels apart. RGB:
// grey is replicated and alpha covers the canvas.
Image make_grid(const std::vector<std::vector<Image>>& rows, int padding);
// A named series of points, e.g. a loss (y) against the iteration (x).
struct Series {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
};
// Line charts stacked one above the other, one panel per series with its own
// y range (so a loss around 0.1 is not flattened by one around 2), sharing
// the x axis (the iteration), with min/max tick labels and names in a tiny
// built-in font. Non-finite values leave gaps. RGB, width x height.
Image plot_losses(const std::vector<Series>& panels, int width, int height);

}  // namespace pixgrad::training
