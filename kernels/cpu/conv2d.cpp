// 2-D convolution as matrix products, one image at a time.
//
// With col = im2col(x) of shape [Cin*kh*kw, OH*OW] and the weight viewed as
// W[Cout, Cin*kh*kw] (PyTorch layout, no copy):
//   forward          y  = W   x col                       (M=Cout,       N=OH*OW,       K=Cin*kh*kw)
//   backward data    dx = col2im(W^T x dy)                (M=Cin*kh*kw,  N=OH*OW,       K=Cout)
//   backward weight  dW = sum_b dy_b x col_b^T            (M=Cout,       N=Cin*kh*kw,   K=OH*OW)
// The transposes are free: sgemm reads them during packing. A 1x1, stride-1,
// unpadded convolution has col == x, so it skips im2col/col2im entirely. The
// forward and backward-weight products of layers with more than 16 output
// channels read col through a MatrixSource: the product's packing makes each
// block of col from the image as it needs it (makes_col_in_packing).
// Stride-1 layers with at most 4 output channels run without col at all
// (kernels/cpu/conv2d_direct.h); wide stride-1 4x4 layers run forward and
// backward-data as Winograd F(2x2, 4x4) (kernels/cpu/conv2d_winograd.h),
// except in bf16, whose products (gemm_bf16) are the faster way there and
// whose rounding Winograd's transforms would magnify.
//
// A stored col is the only scratch memory; it lives in a per-thread growable buffer
// (one image's worth, or one band of output rows for narrow layers, see
// rows_per_band; reused across images and calls). Each product is
// threaded inside sgemm and each im2col/col2im over rows/channels, so batch 1
// keeps both cores busy; images run one after another, which also lets
// backward-weight accumulate the batch sum in place with beta = 1.
//

#include <pixgrad/kernels/cpu/conv2d.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include <pixgrad/kernels/cpu/conv2d_direct.h>
#include <pixgrad/kernels/cpu/conv2d_reference.h>
#include <pixgrad/kernels/cpu/conv2d_winograd.h>
#include <pixgrad/kernels/cpu/gemm.h>
#include <pixgrad/kernels/cpu/im2col.h>
#include <pixgrad/kernels/cpu/reduce.h>

namespace pixgrad::kernels::cpu {
namespace {

thread_local std::vector<float> tls_col;

float* col_buffer(int64_t count) {
  if (static_cast<int64_t>(tls_col.size()) < count) tls_col.resize(static_cast<size_t>(count));
  return tls_col.data();
}

std::string describe(const Conv2dGeometry& g) {
  return "batch=" + std::to_string(g.batch) + " in=[" + std::to_string(g.in_channels) + ", " +
         std::to_string(g.in_height) + ", " + std::to_string(g.in_width) +
         "] out_channels=" + std::to_string(g.out_channels) + " kernel=" +
         std::to_string(g.kernel_h) + "x" + std::to_string(g.kernel_w) +
         " stride=" + std::to_string(g.stride) + " padding=" + std::to_string(g.padding);
}

void check_geometry(const char* op, const Conv2dGeometry& g) {
  const bool ok = g.batch >= 0 && g.in_channels > 0 && g.in_height > 0 && g.in_width > 0 &&
                  g.out_channels > 0 && g.kernel_h > 0 && g.kernel_w > 0 && g.stride > 0 &&
                  g.padding >= 0 && g.in_height + 2 * g.padding >= g.kernel_h &&
                  g.in_width + 2 * g.padding >= g.kernel_w;
  if (!ok) throw std::invalid_argument(std::string(op) + ": invalid geometry (" + describe(g) + ")");
}

Im2colGeometry unfold_geometry(const Conv2dGeometry& g) {
  return {g.in_channels, g.in_height, g.in_width, g.kernel_h, g.kernel_w, g.stride, g.padding};
}

bool is_pointwise(const Conv2dGeometry& g) {
  return g.kernel_h == 1 && g.kernel_w == 1 && g.stride == 1 && g.padding == 0;
}

// Output rows per product. A layer with few output channels uses each col
// entry in a handful of flops, so its product is one pass over col: for a large
// plane (29 MiB of col for PatchGAN's last layer) that pass would go to DRAM
// and back. Such layers run in bands of output rows whose col stays in L3
// (measured: backward-data of that layer 1.5 -> 0.8 ms; bands that fit L2 are
// slower again, the products get too small). Wider layers reuse col across
// many output channels and keep one product.
constexpr int64_t kBandFloats = int64_t{1} << 21;  // 8 MiB of col
constexpr int64_t kBandMaxChannels = 16;

int64_t rows_per_band(const Conv2dGeometry& g, const Im2colGeometry& u) {
  const int64_t out_h = u.out_height();
  if (g.out_channels > kBandMaxChannels || is_pointwise(g)) return out_h;
  return std::clamp<int64_t>(kBandFloats / (u.col_rows() * u.out_width()), 1, out_h);
}

// The matrix product of this precision: sgemm, or gemm_bf16 in bf16; with B
// in memory, or made on demand (a col that is never stored whole).
using Product = void (*)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                         const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                         float* C, int64_t ldc);
using ProductOfMadeB = void (*)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                                float alpha, const float* A, int64_t lda, const MatrixSource& B,
                                float beta, float* C, int64_t ldc);

bool bf16_in_effect() { return conv_precision_in_effect() == ConvPrecision::Bf16; }

Product product_in_effect() {
  return bf16_in_effect() ? static_cast<Product>(gemm_bf16) : static_cast<Product>(sgemm);
}

ProductOfMadeB product_of_made_b_in_effect() {
  return bf16_in_effect() ? static_cast<ProductOfMadeB>(gemm_bf16)
                          : static_cast<ProductOfMadeB>(sgemm);
}

// Forward and backward-weight of a wide layer make col inside the product's
// packing, a cache-sized block at a time (Im2colBlocks): the col of a large
// plane (64 MiB for a 64-channel 4x4 layer at 256x256) is then neither written
// to memory nor read back, and the packing reads the image itself. Narrow
// layers keep their bands of a stored col, whose products are too small to
// pack from (and stay in cache already). Backward-data still stores its col
// product, for col2im.
bool makes_col_in_packing(const Conv2dGeometry& g) {
  return !is_pointwise(g) && g.out_channels > kBandMaxChannels;
}

void fill_col_block(const void* blocks, int64_t row0, int64_t rows, int64_t pixel0,
                    int64_t pixels, float* dst) {
  static_cast<const Im2colBlocks*>(blocks)->fill(row0, rows, pixel0, pixels, dst);
}

bool winograd_applies(const Conv2dGeometry& g) {
  return winograd_conv_applies(g) && conv_precision_in_effect() != ConvPrecision::Bf16;
}

// Minimum elements before a channel loop is worth threading.
constexpr int64_t kParallelElements = int64_t{1} << 15;

void add_bias(const float* bias, int64_t batch, int64_t channels, int64_t plane, float* out) {
  const int64_t planes = batch * channels;
#pragma omp parallel for schedule(static) if (planes * plane >= kParallelElements)
  for (int64_t p = 0; p < planes; ++p) {
    const float value = bias[p % channels];
    float* row = out + p * plane;
    for (int64_t i = 0; i < plane; ++i) row[i] += value;
  }
}

}  // namespace

ConvPrecision conv_precision_in_effect() {
  return conv_precision() == ConvPrecision::Bf16 && gemm_bf16_supported() ? ConvPrecision::Bf16
                                                                          : ConvPrecision::Fp32;
}

ConvChoice conv_choice(const Conv2dGeometry& g, ConvPass pass) {
  if (direct_conv_applies(g)) return {"direct", "fp32"};
  if (pass != ConvPass::BackwardWeight && winograd_applies(g)) return {"winograd", "fp32"};
  // The product's C: forward Cout x columns, backward-data depth x columns,
  // backward-weight Cout x depth (the file comment's table).
  const char* algorithm =
      pass != ConvPass::BackwardData && makes_col_in_packing(g) ? "im2col-in-pack+gemm" : "im2col+gemm";
  if (!bf16_in_effect()) return {algorithm, "fp32"};
  const Im2colGeometry u = unfold_geometry(g);
  const bool transposed_a = pass == ConvPass::BackwardData;
  const int64_t rows = transposed_a ? u.col_rows() : g.out_channels;
  if (pass == ConvPass::BackwardWeight)
    return {algorithm, gemm_bf16_rounds(false, rows, u.col_rows()) ? "bf16" : "fp32"};
  // A banded layer's last band may be narrower than the others.
  const int64_t band_rows = rows_per_band(g, u);
  const int64_t last_band_rows = u.out_height() - (u.out_height() - 1) / band_rows * band_rows;
  const bool full_bands = gemm_bf16_rounds(transposed_a, rows, band_rows * u.out_width());
  const bool last_band = gemm_bf16_rounds(transposed_a, rows, last_band_rows * u.out_width());
  return {algorithm, full_bands && last_band ? "bf16" : full_bands || last_band ? "bf16+fp32" : "fp32"};
}

void conv2d_forward(Host, const Conv2dGeometry& g, const float* input, const float* weight,
                    const float* bias, float* output) {
  check_geometry("conv2d_forward", g);
  const Im2colGeometry u = unfold_geometry(g);
  const int64_t plane = u.col_cols(), depth = u.col_rows(), out_w = u.out_width();
  if (direct_conv_applies(g)) {
    direct_conv_forward(g, input, weight, output);
    if (bias) add_bias(bias, g.batch, g.out_channels, plane, output);
    return;
  }
  if (winograd_applies(g)) {
    winograd_conv_forward(g, input, weight, output);
    if (bias) add_bias(bias, g.batch, g.out_channels, plane, output);
    return;
  }
  const int64_t in_size = g.in_channels * g.in_height * g.in_width;
  const int64_t out_size = g.out_channels * plane;
  if (makes_col_in_packing(g)) {
    for (int64_t b = 0; b < g.batch; ++b) {
      const Im2colBlocks blocks(u, input + b * in_size);
      product_of_made_b_in_effect()(false, false, g.out_channels, plane, depth, 1.0f, weight,
                                    depth, MatrixSource{fill_col_block, &blocks}, 0.0f,
                                    output + b * out_size, plane);
    }
    if (bias) add_bias(bias, g.batch, g.out_channels, plane, output);
    return;
  }
  const bool pointwise = is_pointwise(g);
  const int64_t band_rows = rows_per_band(g, u);
  const Product product = product_in_effect();
  float* col = pointwise ? nullptr : col_buffer(depth * band_rows * out_w);
  for (int64_t b = 0; b < g.batch; ++b) {
    const float* x = input + b * in_size;
    for (int64_t oy = 0; oy < u.out_height(); oy += band_rows) {
      const int64_t oy_end = std::min(u.out_height(), oy + band_rows);
      const int64_t n = (oy_end - oy) * out_w;
      if (!pointwise) im2col(u, x, oy, oy_end, col);
      product(false, false, g.out_channels, n, depth, 1.0f, weight, depth,
              pointwise ? x + oy * out_w : col, pointwise ? plane : n, 0.0f,
              output + b * out_size + oy * out_w, plane);
    }
  }
  if (bias) add_bias(bias, g.batch, g.out_channels, plane, output);
}

void conv2d_backward_data(Host, const Conv2dGeometry& g, const float* grad_output, const float* weight,
                          float* grad_input) {
  check_geometry("conv2d_backward_data", g);
  if (direct_conv_applies(g)) return direct_conv_backward_data(g, grad_output, weight, grad_input);
  if (winograd_applies(g)) return winograd_conv_backward_data(g, grad_output, weight, grad_input);
  const Im2colGeometry u = unfold_geometry(g);
  const int64_t plane = u.col_cols(), depth = u.col_rows(), out_w = u.out_width();
  const int64_t in_size = g.in_channels * g.in_height * g.in_width;
  const int64_t out_size = g.out_channels * plane;
  const Product product = product_in_effect();
  if (is_pointwise(g)) {
    for (int64_t b = 0; b < g.batch; ++b)
      product(true, false, depth, plane, g.out_channels, 1.0f, weight, depth,
              grad_output + b * out_size, plane, 0.0f, grad_input + b * in_size, plane);
    return;
  }
  const int64_t band_rows = rows_per_band(g, u);
  float* col = col_buffer(depth * band_rows * out_w);
  std::fill(grad_input, grad_input + g.batch * in_size, 0.0f);
  for (int64_t b = 0; b < g.batch; ++b) {
    for (int64_t oy = 0; oy < u.out_height(); oy += band_rows) {
      const int64_t oy_end = std::min(u.out_height(), oy + band_rows);
      const int64_t n = (oy_end - oy) * out_w;
      product(true, false, depth, n, g.out_channels, 1.0f, weight, depth,
              grad_output + b * out_size + oy * out_w, plane, 0.0f, col, n);
      col2im(u, col, oy, oy_end, grad_input + b * in_size);
    }
  }
}

void conv2d_backward_weight(Host host, const Conv2dGeometry& g, const float* input,
                            const float* grad_output, float* grad_weight, float* grad_bias) {
  check_geometry("conv2d_backward_weight", g);
  const Im2colGeometry u = unfold_geometry(g);
  const int64_t plane = u.col_cols(), depth = u.col_rows(), out_w = u.out_width();
  const int64_t in_size = g.in_channels * g.in_height * g.in_width;
  const int64_t out_size = g.out_channels * plane;
  if (g.batch == 0) std::fill(grad_weight, grad_weight + g.out_channels * depth, 0.0f);
  if (direct_conv_applies(g)) {
    direct_conv_backward_weight(g, input, grad_output, grad_weight);
    if (grad_bias) sum_per_channel(host, grad_output, g.batch, g.out_channels, plane, grad_bias);
    return;
  }
  if (makes_col_in_packing(g)) {
    for (int64_t b = 0; b < g.batch; ++b) {
      const Im2colBlocks blocks(u, input + b * in_size);
      product_of_made_b_in_effect()(false, true, g.out_channels, depth, plane, 1.0f,
                                    grad_output + b * out_size, plane,
                                    MatrixSource{fill_col_block, &blocks}, b == 0 ? 0.0f : 1.0f,
                                    grad_weight, depth);
    }
    if (grad_bias) sum_per_channel(host, grad_output, g.batch, g.out_channels, plane, grad_bias);
    return;
  }
  const bool pointwise = is_pointwise(g);
  const int64_t band_rows = rows_per_band(g, u);
  const Product product = product_in_effect();
  float* col = pointwise ? nullptr : col_buffer(depth * band_rows * out_w);
  for (int64_t b = 0; b < g.batch; ++b) {
    const float* x = input + b * in_size;
    for (int64_t oy = 0; oy < u.out_height(); oy += band_rows) {
      const int64_t oy_end = std::min(u.out_height(), oy + band_rows);
      const int64_t n = (oy_end - oy) * out_w;
      if (!pointwise) im2col(u, x, oy, oy_end, col);
      const bool first = b == 0 && oy == 0;
      product(false, true, g.out_channels, depth, n, 1.0f, grad_output + b * out_size + oy * out_w,
              plane, pointwise ? x + oy * out_w : col, pointwise ? plane : n,
              first ? 0.0f : 1.0f, grad_weight, depth);
    }
  }
  if (grad_bias) sum_per_channel(host, grad_output, g.batch, g.out_channels, plane, grad_bias);
}

// float64 (gradient checks) runs the direct-loop definition.
void conv2d_forward(Host, const Conv2dGeometry& g, const double* input, const double* weight, const double* bias,
                    double* output) {
  check_geometry("conv2d_forward", g);
  conv2d_forward_reference(g, input, weight, bias, output);
}

void conv2d_backward_data(Host, const Conv2dGeometry& g, const double* grad_output, const double* weight,
                          double* grad_input) {
  check_geometry("conv2d_backward_data", g);
  conv2d_backward_data_reference(g, grad_output, weight, grad_input);
}

void conv2d_backward_weight(Host, const Conv2dGeometry& g, const double* input, const double* grad_output,
                            double* grad_weight, double* grad_bias) {
  check_geometry("conv2d_backward_weight", g);
  conv2d_backward_weight_reference(g, input, grad_output, grad_weight, grad_bias);
}

}  // namespace pixgrad::kernels::cpu
