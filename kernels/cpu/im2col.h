#pragma once

#include <cstdint>

namespace pixgrad::kernels::cpu {

// Geometry of one NCHW image seen through a sliding kernel window.
struct Im2colGeometry {
  int64_t channels, height, width;
  int64_t kernel_h, kernel_w;
  int64_t stride, padding;
  int64_t out_height() const { return (height + 2 * padding - kernel_h) / stride + 1; }
  int64_t out_width() const { return (width + 2 * padding - kernel_w) / stride + 1; }
  int64_t col_rows() const { return channels * kernel_h * kernel_w; }
  int64_t col_cols() const { return out_height() * out_width(); }
};

// Unfolds one image [channels, height, width] into
// col[channels * kernel_h * kernel_w][out_height * out_width]:
//   col[(c * kernel_h + i) * kernel_w + j][oy * out_width + ox] =
//       image[c][oy * stride - padding + i][ox * stride - padding + j]   (0 outside).
// Row order matches the PyTorch weight layout [out, in, kernel_h, kernel_w], so
// a convolution is weight[out, in*kh*kw] x col. Overwrites col.
void im2col(const Im2colGeometry& g, const float* image, float* col);

// Only output rows [oy_begin, oy_end): col is
// [channels * kernel_h * kernel_w][(oy_end - oy_begin) * out_width], the
// matching column band of the full col (a convolution can then be run in bands
// whose col stays in cache).
void im2col(const Im2colGeometry& g, const float* image, int64_t oy_begin, int64_t oy_end,
            float* col);

// Adjoint of im2col: adds every col entry into the image pixel it was read
// from (overlapping windows sum). Accumulates into image; zero it first for a
// plain fold.
void col2im(const Im2colGeometry& g, const float* col, float* image);

// Adjoint of the banded im2col: accumulates a band of output rows.
void col2im(const Im2colGeometry& g, const float* col, int64_t oy_begin, int64_t oy_end,
            float* image);

}  // namespace pixgrad::kernels::cpu
