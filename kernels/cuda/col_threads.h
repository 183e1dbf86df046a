// The per-thread work of the cuBLAS convolution's own kernels
// (kernels/cuda/conv2d_cublas.cu): im2col, col2im and the bias add around
// cublasSgemm. Written as host-and-device functions of explicit block and
// thread numbers, with the launch shapes beside them, so that a host test
// (tests/test_cuda_thread_models.cpp) plays every block and thread of a
// launch on the CPU.
#pragma once

#include <cstdint>

#include <pixgrad/kernels/elementwise_ops.h>  // PIXGRAD_HOST_DEVICE, read_only

namespace pixgrad::kernels::cuda {

// The geometry the kernels index with (all int: the launcher checks that
// every tensor has fewer than 2^31 elements).
struct ColShape {
  int channels, height, width, kernel_h, kernel_w, stride, padding, out_h, out_w;
};

constexpr int kColThreads = 256;  // threads per block of the three kernels
constexpr int kMaxGridY = 65535;

// A launch's grid: x blocks of kColThreads over `columns`, y blocks over
// `rows` (at most kMaxGridY, the rest taken by grid-stride).
struct ColGrid {
  unsigned int x, y;
};
PIXGRAD_HOST_DEVICE ColGrid col_grid(int64_t columns, int64_t rows) {
  return {static_cast<unsigned int>((columns + kColThreads - 1) / kColThreads),
          static_cast<unsigned int>(rows < kMaxGridY ? rows : kMaxGridY)};
}

// col[row][p] of a group of images: row = (image, ci, r, s), p = (oh, ow).
PIXGRAD_HOST_DEVICE float im2col_element(const ColShape& s, const float* __restrict__ image, int row, int p) {
  const int taps = s.kernel_h * s.kernel_w, rows_per_image = s.channels * taps;
  const int img = row / rows_per_image, k = row - img * rows_per_image;
  const int c = k / taps, tap = k - c * taps;
  const int r = tap / s.kernel_w, q = tap - r * s.kernel_w;
  const int oh = p / s.out_w, ow = p - oh * s.out_w;
  const int ih = oh * s.stride - s.padding + r, iw = ow * s.stride - s.padding + q;
  if (ih < 0 || ih >= s.height || iw < 0 || iw >= s.width) return 0.0f;
  return image[((img * s.channels + c) * s.height + ih) * s.width + iw];
}

// The sum of the col entries im2col read from input pixel `pixel` of
// `plane` = (image, c), taps in (r, s) order.
PIXGRAD_HOST_DEVICE float col2im_element(const ColShape& s, const float* __restrict__ col, int plane, int pixel) {
  const int ih = pixel / s.width, iw = pixel - ih * s.width;
  const int pixels = s.out_h * s.out_w, taps = s.kernel_h * s.kernel_w;
  const int img = plane / s.channels, c = plane - img * s.channels;
  const float* rows = col + (img * s.channels * taps + c * taps) * pixels;
  float sum = 0.0f;
  for (int r = 0; r < s.kernel_h; ++r) {
    const int t = ih + s.padding - r;  // = oh * stride when row r of window oh covers ih
    if (t < 0) break;                  // only decreases with r
    if (t % s.stride != 0 || t / s.stride >= s.out_h) continue;
    const int oh = t / s.stride;
    for (int q = 0; q < s.kernel_w; ++q) {
      const int u = iw + s.padding - q;
      if (u < 0) break;
      if (u % s.stride != 0 || u / s.stride >= s.out_w) continue;
      sum += rows[(r * s.kernel_w + q) * pixels + oh * s.out_w + u / s.stride];
    }
  }
  return sum;
}

// One thread of im2col over `rows` col rows: column `p` (block x and
// thread), rows block_y, block_y + grid_y, ...
PIXGRAD_HOST_DEVICE void im2col_thread(const ColShape& s, const float* __restrict__ image, int rows,
                                       float* __restrict__ col, int p, int block_y, int grid_y) {
  const int pixels = s.out_h * s.out_w;
  if (p >= pixels) return;
  for (int row = block_y; row < rows; row += grid_y) col[row * pixels + p] = im2col_element(s, image, row, p);
}

// One thread of col2im over `planes` planes: input pixel `pixel`, planes
// block_y, block_y + grid_y, ...
PIXGRAD_HOST_DEVICE void col2im_thread(const ColShape& s, const float* __restrict__ col, int planes,
                                       float* __restrict__ image, int pixel, int block_y, int grid_y) {
  const int plane_size = s.height * s.width;
  if (pixel >= plane_size) return;
  for (int plane = block_y; plane < planes; plane += grid_y)
    image[plane * plane_size + pixel] = col2im_element(s, col, plane, pixel);
}

// One thread of output[plane][p] += bias[plane % channels]: pixel `p`,
// planes block_y, block_y + grid_y, ...
PIXGRAD_HOST_DEVICE void add_bias_thread(float* __restrict__ output, const float* __restrict__ bias, int channels,
                                         int pixels, int planes, int p, int block_y, int grid_y) {
  if (p >= pixels) return;
  for (int plane = block_y; plane < planes; plane += grid_y)
    output[static_cast<int64_t>(plane) * pixels + p] += read_only(bias + plane % channels);
}

}  // namespace pixgrad::kernels::cuda
