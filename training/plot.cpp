// plot_losses: a line chart drawn straight into pixels, with a 3x5 bitmap
// font for tick labels and legend names, so the trainer needs no plotting
// library to write its loss curve.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include <pixgrad/core/error.h>
#include <pixgrad/training/preview.h>

namespace pixgrad::training {

namespace {

struct Colour {
  uint8_t r, g, b;
};

constexpr Colour kBackground{255, 255, 255};
constexpr Colour kInk{40, 40, 40};
constexpr Colour kGridLine{225, 225, 225};
constexpr Colour kSeriesColours[] = {{31, 119, 180}, {214, 39, 40},  {44, 160, 44},  {255, 127, 14},
                                     {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {23, 190, 207}};

// Glyph rows top to bottom, three bits each, leftmost pixel in the high bit.
struct Glyph {
  char character;
  uint16_t bits;
};
constexpr Glyph kFont[] = {
    {'0', 0b111'101'101'101'111}, {'1', 0b010'110'010'010'111}, {'2', 0b111'001'111'100'111},
    {'3', 0b111'001'111'001'111}, {'4', 0b101'101'111'001'001}, {'5', 0b111'100'111'001'111},
    {'6', 0b111'100'111'101'111}, {'7', 0b111'001'001'010'010}, {'8', 0b111'101'111'101'111},
    {'9', 0b111'101'111'001'111}, {'A', 0b010'101'111'101'101}, {'B', 0b110'101'110'101'110},
    {'C', 0b011'100'100'100'011}, {'D', 0b110'101'101'101'110}, {'E', 0b111'100'110'100'111},
    {'F', 0b111'100'110'100'100}, {'G', 0b011'100'101'101'011}, {'H', 0b101'101'111'101'101},
    {'I', 0b111'010'010'010'111}, {'J', 0b001'001'001'101'010}, {'K', 0b101'101'110'101'101},
    {'L', 0b100'100'100'100'111}, {'M', 0b101'111'111'101'101}, {'N', 0b110'101'101'101'101},
    {'O', 0b010'101'101'101'010}, {'P', 0b110'101'110'100'100}, {'Q', 0b010'101'101'110'011},
    {'R', 0b110'101'110'101'101}, {'S', 0b011'100'010'001'110}, {'T', 0b111'010'010'010'010},
    {'U', 0b101'101'101'101'111}, {'V', 0b101'101'101'101'010}, {'W', 0b101'101'111'111'101},
    {'X', 0b101'101'010'101'101}, {'Y', 0b101'101'010'010'010}, {'Z', 0b111'001'010'100'111},
    {'.', 0b000'000'000'000'010}, {'-', 0b000'000'111'000'000}, {'_', 0b000'000'000'000'111},
    {'/', 0b001'001'010'100'100}, {':', 0b000'010'000'010'000}, {'+', 0b000'010'111'010'000},
    {' ', 0b000'000'000'000'000}};
constexpr uint16_t kUnknownGlyph = 0b111'001'010'000'010;  // '?'

class Canvas {
 public:
  Canvas(int width, int height) : image_(width, height, 3) {
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) set(x, y, kBackground);
    }
  }
  void set(int x, int y, Colour colour) {
    if (x < 0 || y < 0 || x >= image_.width || y >= image_.height) return;
    image_.at(x, y, 0) = colour.r;
    image_.at(x, y, 1) = colour.g;
    image_.at(x, y, 2) = colour.b;
  }
  void fill(int x, int y, int width, int height, Colour colour) {
    for (int j = y; j < y + height; ++j) {
      for (int i = x; i < x + width; ++i) set(i, j, colour);
    }
  }
  // Bresenham: every step moves one pixel along the longer axis.
  void line(int x0, int y0, int x1, int y1, Colour colour) {
    const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
    const int step_x = x0 < x1 ? 1 : -1, step_y = y0 < y1 ? 1 : -1;
    int error = dx + dy;
    while (true) {
      set(x0, y0, colour);
      if (x0 == x1 && y0 == y1) return;
      const int doubled = 2 * error;
      if (doubled >= dy) {
        error += dy;
        x0 += step_x;
      }
      if (doubled <= dx) {
        error += dx;
        y0 += step_y;
      }
    }
  }
  void text(int x, int y, const std::string& text, int scale, Colour colour) {
    for (char character : text) {
      const char upper = static_cast<char>(std::toupper(static_cast<unsigned char>(character)));
      const auto glyph = std::find_if(std::begin(kFont), std::end(kFont),
                                      [&](const Glyph& g) { return g.character == upper; });
      const uint16_t bits = glyph != std::end(kFont) ? glyph->bits : kUnknownGlyph;
      for (int row = 0; row < 5; ++row) {
        for (int column = 0; column < 3; ++column) {
          if (bits & (1u << (14 - 3 * row - column))) fill(x + column * scale, y + row * scale, scale, scale, colour);
        }
      }
      x += 4 * scale;
    }
  }
  Image take() { return std::move(image_); }

 private:
  Image image_;
};

int text_width(const std::string& text, int scale) { return static_cast<int>(text.size()) * 4 * scale - scale; }

std::string format_value(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.3g", value);
  return buffer;
}

}  // namespace

Image plot_losses(const std::vector<std::pair<std::string, std::vector<double>>>& series, int width, int height) {
  PIXGRAD_CHECK(width >= 64 && height >= 48 && width <= data::kMaxImageSide && height <= data::kMaxImageSide,
                "plot_losses: size ", width, "x", height, " is outside 64x48..", data::kMaxImageSide, "x", data::kMaxImageSide);
  const int scale = (width >= 480 && height >= 320) ? 2 : 1;
  const int line_height = 7 * scale;
  double low = INFINITY, high = -INFINITY;
  size_t length = 0;
  for (const auto& named : series) {
    length = std::max(length, named.second.size());
    for (double value : named.second) {
      if (!std::isfinite(value)) continue;
      low = std::min(low, value);
      high = std::max(high, value);
    }
  }
  if (!(low <= high)) {  // nothing finite to draw
    low = 0;
    high = 1;
  }
  if (low == high) {
    low -= 0.5;
    high += 0.5;
  }

  Canvas canvas(width, height);
  // Legend across the top: a swatch and the name of each series, wrapping.
  int legend_x = 4 * scale, legend_y = 3 * scale;
  for (size_t s = 0; s < series.size(); ++s) {
    const Colour colour = kSeriesColours[s % std::size(kSeriesColours)];
    const int entry_width = 8 * scale + text_width(series[s].first, scale) + 8 * scale;
    if (legend_x > 4 * scale && legend_x + entry_width > width) {
      legend_x = 4 * scale;
      legend_y += line_height;
    }
    canvas.fill(legend_x, legend_y, 5 * scale, 5 * scale, colour);
    canvas.text(legend_x + 8 * scale, legend_y, series[s].first, scale, kInk);
    legend_x += entry_width;
  }
  const std::string top_label = format_value(high), bottom_label = format_value(low);
  const std::string end_label = std::to_string(length > 0 ? length - 1 : 0);
  const int label_width = std::max({text_width(top_label, scale), text_width(bottom_label, scale),
                                    text_width(format_value((low + high) / 2), scale)});
  const int left = 4 * scale + label_width + 3 * scale;
  const int top = legend_y + line_height + 3 * scale;
  const int right = width - 1 - 3 * scale - text_width(end_label, scale) / 2;
  const int bottom = height - 1 - line_height - 2 * scale;
  PIXGRAD_CHECK(right - left >= 8 && bottom - top >= 8, "plot_losses: ", width, "x", height,
                " leaves no room for the chart after the legend of ", series.size(), " series");

  // Axes, a middle grid line, and the range labels.
  const int middle = (top + bottom) / 2;
  const std::string middle_label = format_value((low + high) / 2);
  canvas.line(left, middle, right, middle, kGridLine);
  canvas.text(left - 3 * scale - text_width(middle_label, scale), middle - 2 * scale, middle_label, scale, kInk);
  canvas.line(left, top, left, bottom, kInk);
  canvas.line(left, bottom, right, bottom, kInk);
  canvas.text(left - 3 * scale - text_width(top_label, scale), top - 2 * scale, top_label, scale, kInk);
  canvas.text(left - 3 * scale - text_width(bottom_label, scale), bottom - 3 * scale, bottom_label, scale, kInk);
  canvas.text(left, bottom + 2 * scale, "0", scale, kInk);
  canvas.text(right - text_width(end_label, scale) / 2, bottom + 2 * scale, end_label, scale, kInk);

  const double x_span = length > 1 ? static_cast<double>(length - 1) : 1.0;
  auto to_x = [&](size_t i) { return left + static_cast<int>(std::lround(i / x_span * (right - left))); };
  auto to_y = [&](double v) { return bottom - static_cast<int>(std::lround((v - low) / (high - low) * (bottom - top))); };
  for (size_t s = 0; s < series.size(); ++s) {
    const Colour colour = kSeriesColours[s % std::size(kSeriesColours)];
    const std::vector<double>& values = series[s].second;
    for (size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i])) continue;
      const bool joined = i > 0 && std::isfinite(values[i - 1]);
      const size_t from = joined ? i - 1 : i;
      canvas.line(to_x(from), to_y(values[from]), to_x(i), to_y(values[i]), colour);
    }
  }
  return canvas.take();
}

}  // namespace pixgrad::training
