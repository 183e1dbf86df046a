// im2col / col2im: turn a convolution into one matrix product.
//
// A convolution output pixel is a dot product of the weights with the window
// under it; writing every window as a column of col[(c, i, j)][(oy, ox)] makes
// the whole layer weight[out][c*i*j] x col, which the blocked SGEMM runs near
// peak. The price is a copy kernel_h*kernel_w/stride^2 times the input size,
// which is memory traffic the GEMM then reads back once per B block.
//
// Each col row (c, i, j) is a shifted, strided view of image plane c, so the
// rows are produced independently (parallel over rows). Padding is handled by
// computing, per row, the range of output rows/columns whose source pixel is in
// the image and zero-filling outside it, instead of testing every pixel.
// col2im walks the same ranges and accumulates; rows that share a channel add
// into the same plane, so it parallelises over channels instead.

#include <pixgrad/kernels/cpu/im2col.h>

#include <algorithm>
#include <cstring>

namespace pixgrad::kernels::cpu {
namespace {

// Output positions o in [0, out_size) with 0 <= o*stride + offset < size form
// the range [lo, hi).
void valid_range(int64_t offset, int64_t stride, int64_t size, int64_t out_size, int64_t& lo,
                 int64_t& hi) {
  lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  hi = offset >= size ? 0 : (size - 1 - offset) / stride + 1;
  lo = std::min(lo, out_size);
  hi = std::clamp(hi, lo, out_size);
}

// Worth waking the other threads for: a few hundred KiB of copying.
bool worth_threads(int64_t elements) { return elements >= (int64_t{1} << 16); }

}  // namespace

void im2col(const Im2colGeometry& g, const float* image, int64_t oy_begin, int64_t oy_end,
            float* col) {
  const int64_t out_h = g.out_height(), out_w = g.out_width();
  oy_begin = std::max<int64_t>(oy_begin, 0);
  oy_end = std::min(oy_end, out_h);
  if (out_w <= 0 || oy_begin >= oy_end) return;
  const int64_t band = (oy_end - oy_begin) * out_w;
  const int64_t rows = g.col_rows();
  const int64_t window = g.kernel_h * g.kernel_w;
#pragma omp parallel for schedule(static) if (worth_threads(rows * band))
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / window;
    const int64_t i = r / g.kernel_w % g.kernel_h;
    const int64_t j = r % g.kernel_w;
    const float* src = image + c * g.height * g.width;
    float* dst = col + r * band;  // row oy of the band at (oy - oy_begin) * out_w
    int64_t y_lo, y_hi, x_lo, x_hi;
    valid_range(i - g.padding, g.stride, g.height, out_h, y_lo, y_hi);
    valid_range(j - g.padding, g.stride, g.width, out_w, x_lo, x_hi);
    y_lo = std::clamp(y_lo, oy_begin, oy_end);
    y_hi = std::clamp(y_hi, y_lo, oy_end);
    std::fill(dst, dst + (y_lo - oy_begin) * out_w, 0.0f);
    for (int64_t oy = y_lo; oy < y_hi; ++oy) {
      const float* src_row = src + (oy * g.stride - g.padding + i) * g.width +
                             (x_lo * g.stride - g.padding + j);
      float* dst_row = dst + (oy - oy_begin) * out_w;
      std::fill(dst_row, dst_row + x_lo, 0.0f);
      if (g.stride == 1) {
        std::memcpy(dst_row + x_lo, src_row, sizeof(float) * (x_hi - x_lo));
      } else if (g.stride == 2) {
        // A constant stride lets the compiler vectorise the gather with shuffles.
        for (int64_t ox = x_lo; ox < x_hi; ++ox) dst_row[ox] = src_row[(ox - x_lo) * 2];
      } else {
        for (int64_t ox = x_lo; ox < x_hi; ++ox) dst_row[ox] = src_row[(ox - x_lo) * g.stride];
      }
      std::fill(dst_row + x_hi, dst_row + out_w, 0.0f);
    }
    std::fill(dst + (y_hi - oy_begin) * out_w, dst + band, 0.0f);
  }
}

void im2col(const Im2colGeometry& g, const float* image, float* col) {
  im2col(g, image, 0, g.out_height(), col);
}

void col2im(const Im2colGeometry& g, const float* col, int64_t oy_begin, int64_t oy_end,
            float* image) {
  const int64_t out_h = g.out_height(), out_w = g.out_width();
  oy_begin = std::max<int64_t>(oy_begin, 0);
  oy_end = std::min(oy_end, out_h);
  if (out_w <= 0 || oy_begin >= oy_end) return;
  const int64_t band = (oy_end - oy_begin) * out_w;
  const int64_t window = g.kernel_h * g.kernel_w;
#pragma omp parallel for schedule(static) if (worth_threads(g.col_rows() * band))
  for (int64_t c = 0; c < g.channels; ++c) {
    float* dst = image + c * g.height * g.width;
    for (int64_t i = 0; i < g.kernel_h; ++i) {
      int64_t y_lo, y_hi;
      valid_range(i - g.padding, g.stride, g.height, out_h, y_lo, y_hi);
      y_lo = std::clamp(y_lo, oy_begin, oy_end);
      y_hi = std::clamp(y_hi, y_lo, oy_end);
      for (int64_t j = 0; j < g.kernel_w; ++j) {
        int64_t x_lo, x_hi;
        valid_range(j - g.padding, g.stride, g.width, out_w, x_lo, x_hi);
        const float* src = col + (c * window + i * g.kernel_w + j) * band;
        for (int64_t oy = y_lo; oy < y_hi; ++oy) {
          float* dst_row = dst + (oy * g.stride - g.padding + i) * g.width +
                           (x_lo * g.stride - g.padding + j);
          const float* src_row = src + (oy - oy_begin) * out_w;
          if (g.stride == 1) {
            for (int64_t ox = x_lo; ox < x_hi; ++ox) dst_row[ox - x_lo] += src_row[ox];
          } else if (g.stride == 2) {
            for (int64_t ox = x_lo; ox < x_hi; ++ox) dst_row[(ox - x_lo) * 2] += src_row[ox];
          } else {
            for (int64_t ox = x_lo; ox < x_hi; ++ox)
              dst_row[(ox - x_lo) * g.stride] += src_row[ox];
          }
        }
      }
    }
  }
}

void col2im(const Im2colGeometry& g, const float* col, float* image) {
  col2im(g, col, 0, g.out_height(), image);
}

}  // namespace pixgrad::kernels::cpu
