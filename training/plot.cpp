// plot_losses: line charts drawn straight into pixels, one panel per series
// on its own scale, with a 3x5 bitmap font for tick labels and names, so
// the trainer needs no plotting library to write its loss curves.
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

// The finite values' [min, max], widened when they are all equal; [0, 1] when none is finite.
std::pair<double, double> value_range(const std::vector<double>& values) {
  double low = INFINITY, high = -INFINITY;
  for (const double v : values) {
    if (!std::isfinite(v)) continue;
    low = std::min(low, v);
    high = std::max(high, v);
  }
  if (!(low <= high)) return {0.0, 1.0};
  if (low == high) {  // a constant: a band of 10 % around it
    const double margin = low == 0 ? 1.0 : std::fabs(low) * 0.1;
    return {low - margin, high + margin};
  }
  return {low, high};
}

}  // namespace

Image plot_losses(const std::vector<Series>& panels, int width, int height) {
  PIXGRAD_CHECK(width >= 64 && height >= 48 && width <= data::kMaxImageSide && height <= data::kMaxImageSide,
                "plot_losses: size ", width, "x", height, " is outside 64x48..", data::kMaxImageSide, "x",
                data::kMaxImageSide);
  PIXGRAD_CHECK(!panels.empty(), "plot_losses: no series to draw");
  const int scale = (width >= 480 && height >= 320) ? 2 : 1;
  const int line_height = 7 * scale;
  double x_low = INFINITY, x_high = -INFINITY;
  for (const Series& series : panels) {
    PIXGRAD_CHECK(series.x.size() == series.y.size(), "plot_losses: series '", series.name, "' has ",
                  series.x.size(), " x values and ", series.y.size(), " y values");
    for (const double x : series.x) {
      if (!std::isfinite(x)) continue;
      x_low = std::min(x_low, x);
      x_high = std::max(x_high, x);
    }
  }
  if (!(x_low <= x_high)) x_low = x_high = 0;
  if (x_low == x_high) x_high = x_low + 1;

  Canvas canvas(width, height);
  const int panel_height = (height - line_height - 2 * scale) / static_cast<int>(panels.size());
  PIXGRAD_CHECK(panel_height >= 2 * line_height + 8, "plot_losses: ", width, "x", height, " leaves no room for ",
                panels.size(), " panels");
  int left = 0;  // the same for every panel: room for the widest tick label
  std::vector<std::pair<double, double>> ranges;
  for (const Series& series : panels) {
    ranges.push_back(value_range(series.y));
    for (const double v : {ranges.back().first, ranges.back().second})
      left = std::max(left, 4 * scale + text_width(format_value(v), scale) + 3 * scale);
  }
  const std::string end_label = format_value(x_high);
  const int right = width - 1 - 3 * scale - text_width(end_label, scale) / 2;
  PIXGRAD_CHECK(right - left >= 8, "plot_losses: ", width, " pixels leave no room for the chart");
  auto to_x = [&](double x) { return left + static_cast<int>(std::lround((x - x_low) / (x_high - x_low) * (right - left))); };

  for (size_t p = 0; p < panels.size(); ++p) {
    const Series& series = panels[p];
    const Colour colour = kSeriesColours[p % std::size(kSeriesColours)];
    const double low = ranges[p].first, high = ranges[p].second;
    const int panel_top = static_cast<int>(p) * panel_height;
    const int top = panel_top + line_height + 3 * scale;
    const int bottom = panel_top + panel_height - 3 * scale;
    canvas.fill(left, panel_top + scale, 5 * scale, 5 * scale, colour);
    canvas.text(left + 8 * scale, panel_top + scale, series.name, scale, kInk);
    canvas.line(left, (top + bottom) / 2, right, (top + bottom) / 2, kGridLine);
    canvas.line(left, top, left, bottom, kInk);
    canvas.line(left, bottom, right, bottom, kInk);
    for (const auto& [value, y] : {std::pair<double, int>{high, top - 2 * scale}, {low, bottom - 3 * scale}}) {
      const std::string label = format_value(value);
      canvas.text(left - 3 * scale - text_width(label, scale), y, label, scale, kInk);
    }
    auto to_y = [&](double v) {
      return bottom - static_cast<int>(std::lround((v - low) / (high - low) * (bottom - top)));
    };
    for (size_t i = 0; i < series.y.size(); ++i) {
      if (!std::isfinite(series.y[i]) || !std::isfinite(series.x[i])) continue;
      const bool joined = i > 0 && std::isfinite(series.y[i - 1]) && std::isfinite(series.x[i - 1]);
      const size_t from = joined ? i - 1 : i;
      canvas.line(to_x(series.x[from]), to_y(series.y[from]), to_x(series.x[i]), to_y(series.y[i]), colour);
    }
  }
  // The shared x axis: iterations.
  const int axis_y = height - line_height;
  const std::string start_label = format_value(x_low);
  canvas.text(left, axis_y, start_label, scale, kInk);
  canvas.text(right - text_width(end_label, scale) / 2, axis_y, end_label, scale, kInk);
  const std::string caption = "iteration";
  canvas.text((left + right - text_width(caption, scale)) / 2, axis_y, caption, scale, kInk);
  return canvas.take();
}

}  // namespace pixgrad::training
