#pragma once

#include <cstdint>
#include <vector>

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

// Blocks of one image's col, made on demand: a matrix product can then pack
// its operand from blocks that stay in cache instead of reading a col the size
// of kernel_h * kernel_w / stride^2 images back from memory. Where each col
// row reads (its channel plane, tap and valid output range) is worked out once,
// here, so that filling a block does no division per row.
class Im2colBlocks {
 public:
  Im2colBlocks(const Im2colGeometry& g, const float* image);

  // col rows [row0, row0 + rows) at output pixels [pixel0, pixel0 + pixels)
  // (pixel p = oy * out_width + ox), written row after row with leading
  // dimension `pixels`: dst[(r - row0) * pixels + (p - pixel0)] = col[r][p].
  // The ranges must lie inside col. Single-threaded.
  void fill(int64_t row0, int64_t rows, int64_t pixel0, int64_t pixels, float* dst) const;

 private:
  struct Row {
    int64_t source;        // image offset of output pixel (0, 0)'s tap, maybe outside the image
    int64_t y_lo, y_hi;    // output rows whose tap lies inside the image
    int64_t x_lo, x_hi;    // likewise output columns
  };
  Im2colGeometry g_;
  const float* image_;
  std::vector<Row> rows_;
};

}  // namespace pixgrad::kernels::cpu
