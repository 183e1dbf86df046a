// Plain double-precision loops that define a convolution's three passes, and
// random data for them: the references the CPU convolution tests compare
// against.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <pixgrad/kernels/shapes.h>

namespace pixgrad::testing {

using kernels::Conv2dGeometry;

inline std::vector<float> random_vector(int64_t count, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = dist(rng);
  return v;
}

struct ConvData {
  std::vector<float> x, w, bias, dy;
};

inline ConvData random_conv_data(const Conv2dGeometry& g, std::mt19937& rng) {
  const int64_t oh = g.out_height(), ow = g.out_width();
  return {random_vector(g.batch * g.in_channels * g.in_height * g.in_width, rng),
          random_vector(g.out_channels * g.in_channels * g.kernel_h * g.kernel_w, rng),
          random_vector(g.out_channels, rng),
          random_vector(g.batch * g.out_channels * oh * ow, rng)};
}

// Calls f(b, co, ci, oy, ox, iy, ix, i, j) for every in-image tap of the conv.
template <typename F>
inline void for_each_tap(const Conv2dGeometry& g, F&& f) {
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t co = 0; co < g.out_channels; ++co)
      for (int64_t ci = 0; ci < g.in_channels; ++ci)
        for (int64_t oy = 0; oy < g.out_height(); ++oy)
          for (int64_t ox = 0; ox < g.out_width(); ++ox)
            for (int64_t i = 0; i < g.kernel_h; ++i)
              for (int64_t j = 0; j < g.kernel_w; ++j) {
                const int64_t iy = oy * g.stride - g.padding + i;
                const int64_t ix = ox * g.stride - g.padding + j;
                if (iy >= 0 && iy < g.in_height && ix >= 0 && ix < g.in_width)
                  f(b, co, ci, oy, ox, iy, ix, i, j);
              }
}

struct ConvIndex {
  const Conv2dGeometry& g;
  int64_t x(int64_t b, int64_t c, int64_t y, int64_t xx) const {
    return ((b * g.in_channels + c) * g.in_height + y) * g.in_width + xx;
  }
  int64_t y(int64_t b, int64_t c, int64_t yy, int64_t xx) const {
    return ((b * g.out_channels + c) * g.out_height() + yy) * g.out_width() + xx;
  }
  int64_t w(int64_t co, int64_t ci, int64_t i, int64_t j) const {
    return ((co * g.in_channels + ci) * g.kernel_h + i) * g.kernel_w + j;
  }
};

inline std::vector<double> naive_forward(const Conv2dGeometry& g, const ConvData& d, bool with_bias) {
  const ConvIndex at{g};
  std::vector<double> y(d.dy.size(), 0.0);
  for_each_tap(g, [&](int64_t b, int64_t co, int64_t ci, int64_t oy, int64_t ox, int64_t iy,
                      int64_t ix, int64_t i, int64_t j) {
    y[at.y(b, co, oy, ox)] += static_cast<double>(d.x[at.x(b, ci, iy, ix)]) * d.w[at.w(co, ci, i, j)];
  });
  if (with_bias)
    for (int64_t b = 0; b < g.batch; ++b)
      for (int64_t co = 0; co < g.out_channels; ++co)
        for (int64_t p = 0; p < g.out_height() * g.out_width(); ++p)
          y[(b * g.out_channels + co) * g.out_height() * g.out_width() + p] += d.bias[co];
  return y;
}

inline std::vector<double> naive_backward_data(const Conv2dGeometry& g, const ConvData& d) {
  const ConvIndex at{g};
  std::vector<double> dx(d.x.size(), 0.0);
  for_each_tap(g, [&](int64_t b, int64_t co, int64_t ci, int64_t oy, int64_t ox, int64_t iy,
                      int64_t ix, int64_t i, int64_t j) {
    dx[at.x(b, ci, iy, ix)] += static_cast<double>(d.dy[at.y(b, co, oy, ox)]) * d.w[at.w(co, ci, i, j)];
  });
  return dx;
}

inline std::vector<double> naive_backward_weight(const Conv2dGeometry& g, const ConvData& d) {
  const ConvIndex at{g};
  std::vector<double> dw(d.w.size(), 0.0);
  for_each_tap(g, [&](int64_t b, int64_t co, int64_t ci, int64_t oy, int64_t ox, int64_t iy,
                      int64_t ix, int64_t i, int64_t j) {
    dw[at.w(co, ci, i, j)] += static_cast<double>(d.dy[at.y(b, co, oy, ox)]) * d.x[at.x(b, ci, iy, ix)];
  });
  return dw;
}

inline std::vector<double> naive_bias_grad(int64_t batch, int64_t channels, int64_t plane,
                                    const std::vector<float>& dy) {
  std::vector<double> db(static_cast<size_t>(channels), 0.0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t p = 0; p < plane; ++p) db[c] += dy[(b * channels + c) * plane + p];
  return db;
}

inline std::string describe(const Conv2dGeometry& g) {
  return "batch=" + std::to_string(g.batch) + " in=" + std::to_string(g.in_channels) + "x" +
         std::to_string(g.in_height) + "x" + std::to_string(g.in_width) +
         " out=" + std::to_string(g.out_channels) + " k=" + std::to_string(g.kernel_h) + "x" +
         std::to_string(g.kernel_w) + " s=" + std::to_string(g.stride) +
         " p=" + std::to_string(g.padding);
}

}  // namespace pixgrad::testing
