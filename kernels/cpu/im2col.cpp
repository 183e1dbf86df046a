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
  const Im2colBlocks blocks(g, image);
#pragma omp parallel for schedule(static) if (worth_threads(rows * band))
  for (int64_t r = 0; r < rows; ++r) blocks.fill(r, 1, oy_begin * out_w, band, col + r * band);
}

void im2col(const Im2colGeometry& g, const float* image, float* col) {
  im2col(g, image, 0, g.out_height(), col);
}

Im2colBlocks::Im2colBlocks(const Im2colGeometry& g, const float* image) : g_(g), image_(image) {
  const int64_t out_h = g.out_height(), out_w = g.out_width();
  rows_.resize(static_cast<size_t>(g.col_rows()));
  for (int64_t r = 0; r < g.col_rows(); ++r) {
    const int64_t c = r / (g.kernel_h * g.kernel_w);
    const int64_t i = r / g.kernel_w % g.kernel_h;
    const int64_t j = r % g.kernel_w;
    Row& row = rows_[static_cast<size_t>(r)];
    row.source = c * g.height * g.width + (i - g.padding) * g.width + (j - g.padding);
    valid_range(i - g.padding, g.stride, g.height, out_h, row.y_lo, row.y_hi);
    valid_range(j - g.padding, g.stride, g.width, out_w, row.x_lo, row.x_hi);
  }
}

void Im2colBlocks::fill(int64_t row0, int64_t rows, int64_t pixel0, int64_t pixels,
                        float* dst) const {
  const int64_t out_w = g_.out_width(), stride = g_.stride;
  const int64_t first_oy = pixel0 / out_w, first_ox = pixel0 % out_w;
  for (int64_t r = 0; r < rows; ++r, dst += pixels) {
    const Row& row = rows_[static_cast<size_t>(row0 + r)];
    // The pixel range crosses output rows: one segment [ox0, ox1) per row.
    int64_t oy = first_oy, ox0 = first_ox;
    for (int64_t done = 0; done < pixels; ++oy, ox0 = 0) {
      const int64_t ox1 = std::min(out_w, ox0 + (pixels - done));
      float* out = dst + done;  // out[ox - ox0] is pixel (oy, ox)
      done += ox1 - ox0;
      if (oy < row.y_lo || oy >= row.y_hi) {
        std::fill(out, out + (ox1 - ox0), 0.0f);
        continue;
      }
      const int64_t lo = std::clamp(row.x_lo, ox0, ox1), hi = std::clamp(row.x_hi, lo, ox1);
      std::fill(out, out + (lo - ox0), 0.0f);
      // Pixel (oy, lo)'s tap, inside the image.
      const float* src = image_ + (row.source + (oy * g_.width + lo) * stride);
      float* inside = out + (lo - ox0);
      const int64_t count = hi - lo;
      if (stride == 1) {
        std::memcpy(inside, src, sizeof(float) * count);
      } else if (stride == 2) {
        // A constant stride lets the compiler vectorise the gather with shuffles.
        for (int64_t x = 0; x < count; ++x) inside[x] = src[x * 2];
      } else {
        for (int64_t x = 0; x < count; ++x) inside[x] = src[x * stride];
      }
      std::fill(inside + count, out + (ox1 - ox0), 0.0f);
    }
  }
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
