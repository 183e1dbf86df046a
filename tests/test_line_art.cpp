// Line art filters: the separable blur equals a direct 2-D convolution, XDoG
// draws a dark line on the dark side of a step and leaves flat areas white,
// Canny finds the border of a square where it is known to be and nothing
// elsewhere.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <random>

#include <pixgrad/core/error.h>
#include <pixgrad/data/line_art.h>

using namespace pixgrad;
using namespace pixgrad::data;

namespace {

// A 3-channel image whose grey level is `grey(x, y)` in 0..255.
template <typename Grey>
Image grey_image(int width, int height, Grey grey) {
  Image image(width, height, 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c) image.at(x, y, c) = static_cast<uint8_t>(grey(x, y));
  return image;
}

}  // namespace

TEST_CASE("gaussian_blur equals a direct 2-D convolution with clamped edges", "[line_art]") {
  std::mt19937 random(12);
  std::uniform_real_distribution<double> uniform(0, 1);
  GreyImage image{23, 17, {}};
  for (int i = 0; i < image.width * image.height; ++i) image.values.push_back(uniform(random));

  for (const double sigma : {0.6, 1.3, 2.5}) {
    CAPTURE(sigma);
    const int radius = static_cast<int>(std::ceil(3 * sigma));
    double total = 0;
    for (int i = -radius; i <= radius; ++i) total += std::exp(-i * i / (2 * sigma * sigma));
    const std::vector<double> kernel = gaussian_kernel(sigma);
    REQUIRE(kernel.size() == static_cast<size_t>(2 * radius + 1));

    const GreyImage blurred = gaussian_blur(image, sigma);
    for (int y = 0; y < image.height; ++y)
      for (int x = 0; x < image.width; ++x) {
        double expected = 0;
        for (int dy = -radius; dy <= radius; ++dy)
          for (int dx = -radius; dx <= radius; ++dx) {
            const double weight = std::exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)) / (total * total);
            const int sx = std::min(std::max(x + dx, 0), image.width - 1);
            const int sy = std::min(std::max(y + dy, 0), image.height - 1);
            expected += weight * image.at(sx, sy);
          }
        REQUIRE(blurred.at(x, y) == Approx(expected).margin(1e-12));
      }
  }
  CHECK_THROWS_AS(gaussian_kernel(0), Error);
}

TEST_CASE("to_grey uses BT.601 luma and reads grey as is", "[line_art]") {
  Image rgb(1, 1, 3);
  rgb.pixels = {255, 0, 0};
  CHECK(to_grey(rgb).values[0] == Approx(0.299));
  Image grey_alpha(1, 1, 2);
  grey_alpha.pixels = {51, 7};
  CHECK(to_grey(grey_alpha).values[0] == Approx(0.2));
}

TEST_CASE("xdog_edges draws a dark line at a step and white in flat areas", "[line_art]") {
  // Grey 0.3 left of x = 20, 0.8 from there on.
  const Image step = grey_image(40, 12, [](int x, int) { return x < 20 ? 77 : 204; });
  const Image lines = xdog_edges(step);
  REQUIRE(lines.channels == 1);
  REQUIRE(lines.width == 40);
  REQUIRE(lines.height == 12);
  for (int y = 0; y < lines.height; ++y) {
    CAPTURE(y);
    // The line lies on the dark side, next to the step.
    CHECK(std::min(lines.at(18, y, 0), lines.at(19, y, 0)) < 64);
    for (int x = 0; x < lines.width; ++x) {
      CAPTURE(x);
      if (x < 14 || x >= 20) CHECK(lines.at(x, y, 0) == 255);
    }
  }
  for (const int level : {0, 90, 255}) {
    const Image flat = xdog_edges(grey_image(16, 16, [level](int, int) { return level; }));
    for (const uint8_t value : flat.pixels) REQUIRE(value == 255);
  }
}

TEST_CASE("canny_edges finds a square's border and nothing in flat areas", "[line_art]") {
  // A white square over x, y in 11..20 on black, with a half-grey ring at 10
  // and 21: the gradient peaks exactly on the ring.
  const auto ring = [](int v) { return v == 10 || v == 21; };
  const auto inside = [](int v) { return v >= 10 && v <= 21; };
  const Image square = grey_image(32, 32, [&](int x, int y) {
    if (!inside(x) || !inside(y)) return 0;
    return ring(x) || ring(y) ? 128 : 255;
  });
  const Image edges = canny_edges(square);
  REQUIRE(edges.channels == 1);
  const auto is_edge = [&](int x, int y) { return edges.at(x, y, 0) == 0; };
  // Along the straight sides (away from the corners) exactly the ring pixels.
  for (int v = 12; v <= 19; ++v) {
    CAPTURE(v);
    for (int u = 0; u < 32; ++u) {
      CAPTURE(u);
      CHECK(is_edge(u, v) == ring(u));
      CHECK(is_edge(v, u) == ring(u));
    }
  }
  // Nothing more than a pixel away from the ring, corners included.
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) {
      const bool near_ring = x >= 9 && x <= 22 && y >= 9 && y <= 22 && !(x >= 12 && x <= 19 && y >= 12 && y <= 19);
      if (!near_ring) CHECK(!is_edge(x, y));
    }
  const Image flat = canny_edges(grey_image(16, 16, [](int, int) { return 90; }));
  for (const uint8_t value : flat.pixels) REQUIRE(value == 255);

  CannyOptions inverted;
  inverted.low = 0.5;
  inverted.high = 0.1;
  CHECK_THROWS_AS(canny_edges(square, inverted), Error);
}
