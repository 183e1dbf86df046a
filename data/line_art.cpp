// Line art filters: XDoG and Canny over a separable Gaussian blur. Plain
// loops in double precision; a 256 x 256 photo takes a few milliseconds.
#include <pixgrad/data/line_art.h>

#include <algorithm>
#include <cmath>

#include <pixgrad/core/error.h>

namespace pixgrad::data {

namespace {

void check_image(const char* op, const Image& image) {
  PIXGRAD_CHECK(image.width > 0 && image.height > 0 && image.channels >= 1 && image.channels <= 4, op,
                ": expected a non-empty image of 1 to 4 channels, got ", image.width, "x", image.height, "x",
                image.channels);
}

void check_sigma(const char* op, double sigma) {
  // Past 100 pixels the kernel would be wider than any image we accept is useful for.
  PIXGRAD_CHECK(std::isfinite(sigma) && sigma > 0 && sigma <= 100, op, ": sigma must be in (0, 100], got ", sigma);
}

// [0, 1] -> 0..255, rounded; the filters' results are in [0, 1] already.
Image to_bytes(const GreyImage& grey) {
  Image out(grey.width, grey.height, 1);
  for (size_t i = 0; i < grey.values.size(); ++i)
    out.pixels[i] = static_cast<uint8_t>(std::lround(std::clamp(grey.values[i], 0.0, 1.0) * 255.0));
  return out;
}

// One pass of the separable blur along x (dx = 1) or y (dx = 0): out(x, y) =
// sum_i kernel[r + i] * in(clamp(x + i), y), or the same down the column.
GreyImage blur_pass(const GreyImage& in, const std::vector<double>& kernel, bool along_x) {
  const int radius = static_cast<int>(kernel.size() / 2);
  const int length = along_x ? in.width : in.height;
  GreyImage out = in;
#pragma omp parallel for schedule(static)
  for (int y = 0; y < in.height; ++y) {
    for (int x = 0; x < in.width; ++x) {
      const int position = along_x ? x : y;
      double sum = 0;
      for (int i = -radius; i <= radius; ++i) {
        const int p = std::clamp(position + i, 0, length - 1);
        sum += kernel[radius + i] * (along_x ? in.at(p, y) : in.at(x, p));
      }
      out.values[static_cast<size_t>(y) * in.width + x] = sum;
    }
  }
  return out;
}

}  // namespace

GreyImage to_grey(const Image& image) {
  check_image("to_grey", image);
  GreyImage grey{image.width, image.height, std::vector<double>(static_cast<size_t>(image.width) * image.height)};
  const bool colour = image.channels >= 3;
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < image.width; ++x) {
      const double value = colour ? 0.299 * image.at(x, y, 0) + 0.587 * image.at(x, y, 1) + 0.114 * image.at(x, y, 2)
                                  : image.at(x, y, 0);
      grey.values[static_cast<size_t>(y) * image.width + x] = value / 255.0;
    }
  return grey;
}

std::vector<double> gaussian_kernel(double sigma) {
  check_sigma("gaussian_kernel", sigma);
  // 3 sigma holds all but 0.3% of the weight; the rest is renormalised away.
  const int radius = std::max(1, static_cast<int>(std::ceil(3 * sigma)));
  std::vector<double> kernel(2 * radius + 1);
  double total = 0;
  for (int i = -radius; i <= radius; ++i) total += kernel[radius + i] = std::exp(-0.5 * i * i / (sigma * sigma));
  for (double& weight : kernel) weight /= total;
  return kernel;
}

GreyImage gaussian_blur(const GreyImage& image, double sigma) {
  PIXGRAD_CHECK(image.width > 0 && image.height > 0 &&
                    image.values.size() == static_cast<size_t>(image.width) * image.height,
                "gaussian_blur: expected a non-empty ", image.width, "x", image.height, " image, got ",
                image.values.size(), " values");
  const std::vector<double> kernel = gaussian_kernel(sigma);
  // Clamping is per axis, so the 2-D blur with clamped edges factors exactly into these two passes.
  return blur_pass(blur_pass(image, kernel, true), kernel, false);
}

Image xdog_edges(const Image& image, const XdogOptions& options) {
  check_image("xdog_edges", image);
  check_sigma("xdog_edges", options.sigma);
  PIXGRAD_CHECK(std::isfinite(options.k) && options.k > 1, "xdog_edges: k must be above 1, got ", options.k);
  PIXGRAD_CHECK(std::isfinite(options.tau) && std::isfinite(options.epsilon) && std::isfinite(options.phi) &&
                    options.phi > 0,
                "xdog_edges: tau, epsilon and phi must be finite and phi positive, got tau ", options.tau,
                ", epsilon ", options.epsilon, ", phi ", options.phi);
  const GreyImage grey = to_grey(image);
  const GreyImage fine = gaussian_blur(grey, options.sigma);
  const GreyImage wide = gaussian_blur(grey, options.k * options.sigma);
  GreyImage lines = fine;
  for (size_t i = 0; i < lines.values.size(); ++i) {
    const double d = fine.values[i] - options.tau * wide.values[i];
    // The soft threshold keeps line strokes antialiased instead of jagged.
    lines.values[i] = d >= options.epsilon ? 1.0 : 1.0 + std::tanh(options.phi * (d - options.epsilon));
  }
  return to_bytes(lines);
}

Image canny_edges(const Image& image, const CannyOptions& options) {
  check_image("canny_edges", image);
  check_sigma("canny_edges", options.sigma);
  PIXGRAD_CHECK(std::isfinite(options.low) && std::isfinite(options.high) && options.low >= 0 &&
                    options.low <= options.high,
                "canny_edges: thresholds must satisfy 0 <= low <= high, got low ", options.low, ", high ",
                options.high);
  const GreyImage smooth = gaussian_blur(to_grey(image), options.sigma);
  const int w = smooth.width, h = smooth.height;
  auto at = [&](int x, int y) { return smooth.at(std::clamp(x, 0, w - 1), std::clamp(y, 0, h - 1)); };
  auto index = [w](int x, int y) { return static_cast<size_t>(y) * w + x; };

  // Sobel; dividing by 8 turns the sums into grey levels per pixel.
  std::vector<double> magnitude(static_cast<size_t>(w) * h);
  std::vector<uint8_t> direction(magnitude.size());  // 0: along x, 1: diagonal \, 2: along y, 3: diagonal /
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const double gx = (at(x + 1, y - 1) + 2 * at(x + 1, y) + at(x + 1, y + 1) - at(x - 1, y - 1) -
                         2 * at(x - 1, y) - at(x - 1, y + 1)) / 8;
      const double gy = (at(x - 1, y + 1) + 2 * at(x, y + 1) + at(x + 1, y + 1) - at(x - 1, y - 1) -
                         2 * at(x, y - 1) - at(x + 1, y - 1)) / 8;
      magnitude[index(x, y)] = std::hypot(gx, gy);
      // The gradient's angle folded into [0, 180) degrees (y points down), in four 45-degree sectors.
      double angle = std::atan2(gy, gx) * 180 / M_PI;
      if (angle < 0) angle += 180;
      direction[index(x, y)] = static_cast<uint8_t>(static_cast<int>(std::floor((angle + 22.5) / 45)) % 4);
    }

  // Non-maximum suppression: a pixel stays only if it is a maximum along its
  // gradient. On a tie (an edge exactly between two pixels) the first of the
  // two stays, so every edge is one pixel wide.
  static constexpr int kStep[4][2] = {{1, 0}, {1, 1}, {0, 1}, {-1, 1}};
  std::vector<uint8_t> state(magnitude.size(), 0);  // 0 none, 1 weak, 2 strong
  std::vector<size_t> pending;
  for (int y = 1; y < h - 1; ++y)
    for (int x = 1; x < w - 1; ++x) {
      const size_t i = index(x, y);
      const double m = magnitude[i];
      if (m < options.low || m == 0) continue;
      const int* step = kStep[direction[i]];
      if (!(m > magnitude[index(x - step[0], y - step[1])] && m >= magnitude[index(x + step[0], y + step[1])]))
        continue;
      state[i] = m >= options.high ? 2 : 1;
      if (state[i] == 2) pending.push_back(i);
    }

  // Hysteresis: grow the strong edges through 8-connected weak pixels.
  while (!pending.empty()) {
    const size_t i = pending.back();
    pending.pop_back();
    const int x = static_cast<int>(i % w), y = static_cast<int>(i / w);
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        if (x + dx < 0 || x + dx >= w || y + dy < 0 || y + dy >= h) continue;
        const size_t j = index(x + dx, y + dy);
        if (state[j] == 1) {
          state[j] = 2;
          pending.push_back(j);
        }
      }
  }
  Image out(w, h, 1, 255);
  for (size_t i = 0; i < state.size(); ++i)
    if (state[i] == 2) out.pixels[i] = 0;
  return out;
}

}  // namespace pixgrad::data
