// Wide convolutions make their im2col matrix inside the matrix product's
// packing, a block at a time (Im2colBlocks, MatrixSource). Each piece is held
// to what it replaces: a block to col as defined (exactly), a product with a
// made B to the product with B in memory (bit for bit), a convolution to
// im2col followed by the product (bit for bit).

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <pixgrad/kernels/conv_settings.h>
#include <pixgrad/kernels/cpu/conv2d.h>
#include <pixgrad/kernels/cpu/gemm.h>
#include <pixgrad/kernels/cpu/im2col.h>

#include "tests/conv_reference.h"
#include "tests/precision_scope.h"

using namespace pixgrad::kernels::cpu;
using pixgrad::kernels::Conv2dGeometry;
using pixgrad::kernels::ConvPass;
using pixgrad::kernels::ConvPrecision;
using namespace pixgrad::testing;

namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// col from its definition: row (c, i, j), pixel (oy, ox) holds the image
// value under tap (i, j) of that pixel's window, 0 in the padding.
float col_entry(const Im2colGeometry& u, const std::vector<float>& image, int64_t row,
                int64_t pixel) {
  const int64_t c = row / (u.kernel_h * u.kernel_w);
  const int64_t i = row / u.kernel_w % u.kernel_h, j = row % u.kernel_w;
  const int64_t oy = pixel / u.out_width(), ox = pixel % u.out_width();
  const int64_t iy = oy * u.stride - u.padding + i, ix = ox * u.stride - u.padding + j;
  const bool inside = iy >= 0 && iy < u.height && ix >= 0 && ix < u.width;
  return inside ? image[static_cast<size_t>((c * u.height + iy) * u.width + ix)] : 0.0f;
}

std::vector<float> stored_col(const Im2colGeometry& u, const float* image) {
  std::vector<float> col(static_cast<size_t>(u.col_rows() * u.col_cols()),
                         std::numeric_limits<float>::quiet_NaN());
  im2col(u, image, col.data());
  return col;
}

// A B held in memory, handed out through a MatrixSource, with every block it
// is asked for checked to lie inside the matrix.
struct StoredSource {
  const std::vector<float>* matrix;
  int64_t rows, cols;
  mutable bool asked_outside = false;

  static void fill(const void* context, int64_t row0, int64_t rows, int64_t col0, int64_t cols,
                   float* dst) {
    const auto& self = *static_cast<const StoredSource*>(context);
    if (row0 < 0 || col0 < 0 || rows < 1 || cols < 1 || row0 + rows > self.rows ||
        col0 + cols > self.cols) {
      self.asked_outside = true;
      return;
    }
    for (int64_t r = 0; r < rows; ++r)
      std::copy_n(self.matrix->data() + (row0 + r) * self.cols + col0, cols, dst + r * cols);
  }
};

using MemoryProduct = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                               const float*, int64_t, float, float*, int64_t);
using MadeProduct = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                             const MatrixSource&, float, float*, int64_t);

struct ProductPair {
  const char* name;
  MemoryProduct memory;
  MadeProduct made;
};

std::vector<ProductPair> products() {
  std::vector<ProductPair> pairs = {
      {"sgemm", static_cast<MemoryProduct>(sgemm), static_cast<MadeProduct>(sgemm)}};
  if (gemm_bf16_supported())
    pairs.push_back({"gemm_bf16", static_cast<MemoryProduct>(gemm_bf16),
                     static_cast<MadeProduct>(gemm_bf16)});
  else
    WARN("this CPU has no avx512_bf16: gemm_bf16 with a made B is not exercised");
  return pairs;
}

// The wide layers whose col is made in packing (more than 16 output
// channels, not pointwise): output rows that panels of 32 pixels cross, a
// depth over two K slices (256 values in FP32, 512 in bf16), strides 1 to 3,
// padding, non-square kernels, batches, and planes small enough for the
// skinny products (4 and 1 pixels).
std::vector<Conv2dGeometry> wide_geometries() {
  return {
      {2, 20, 23, 19, 24, 3, 3, 1, 1},  // 437 pixels, 19 per row
      {1, 37, 17, 15, 20, 4, 4, 2, 2},  // depth 592
      {1, 9, 12, 14, 18, 3, 2, 3, 1},   // stride 3, 3x2 kernel
      {3, 16, 16, 16, 32, 4, 4, 2, 1},  // the U-Net's 4x4 / 2 layers
      {1, 64, 4, 4, 40, 4, 4, 2, 1},    // 2x2 output: B of 4 columns
      {2, 33, 2, 2, 17, 4, 4, 2, 1},    // 1x1 output
      {1, 40, 70, 9, 64, 5, 1, 1, 2},   // 5x1 kernel, 9 pixels per row
  };
}

}  // namespace

TEST_CASE("Im2colBlocks fills any block of col exactly as col is defined", "[cpu][conv][im2col]") {
  std::mt19937 rng(11);
  for (const Im2colGeometry u :
       {Im2colGeometry{3, 9, 7, 3, 3, 1, 1}, Im2colGeometry{2, 11, 13, 4, 4, 2, 2},
        Im2colGeometry{4, 10, 6, 2, 3, 3, 0}, Im2colGeometry{1, 5, 5, 5, 5, 1, 4},
        Im2colGeometry{2, 9, 75, 4, 4, 2, 1}}) {  // stride 2, rows of 37 pixels
    INFO("channels " << u.channels << ", " << u.height << "x" << u.width << ", kernel "
                     << u.kernel_h << "x" << u.kernel_w << ", stride " << u.stride
                     << ", padding " << u.padding);
    const std::vector<float> image = random_vector(u.channels * u.height * u.width, rng);
    const Im2colBlocks blocks(u, image.data());
    const int64_t depth = u.col_rows(), plane = u.col_cols();
    int mismatches = 0, guard_writes = 0;
    for (int trial = 0; trial < 200; ++trial) {
      const int64_t row0 = std::uniform_int_distribution<int64_t>(0, depth - 1)(rng);
      const int64_t rows = std::uniform_int_distribution<int64_t>(1, depth - row0)(rng);
      const int64_t pixel0 = std::uniform_int_distribution<int64_t>(0, plane - 1)(rng);
      // Mostly short ranges, like a panel's 32 pixels; sometimes to the end.
      const int64_t longest = plane - pixel0;
      const int64_t pixels = trial % 4 == 0 ? longest
                                            : std::uniform_int_distribution<int64_t>(
                                                  1, std::min<int64_t>(longest, 40))(rng);
      std::vector<float> block(static_cast<size_t>(rows * pixels + 8), 42.0f);
      blocks.fill(row0, rows, pixel0, pixels, block.data());
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t p = 0; p < pixels; ++p)
          mismatches += block[r * pixels + p] != col_entry(u, image, row0 + r, pixel0 + p);
      for (int64_t e = rows * pixels; e < rows * pixels + 8; ++e) guard_writes += block[e] != 42.0f;
    }
    CHECK(mismatches == 0);
    CHECK(guard_writes == 0);
  }
}

TEST_CASE("products with a made B equal the products with B in memory, bit for bit",
          "[cpu][gemm][im2col]") {
  std::mt19937 rng(12);
  struct Shape {
    bool trans_a, trans_b;
    int64_t M, N, K;
    float beta;
  };
  const std::vector<Shape> shapes = {
      {false, false, 37, 101, 300, 0.0f},  // ragged panels, two FP32 K slices
      {false, true, 40, 77, 1100, 1.0f},   // B^T, three bf16 K slices, accumulating
      {true, false, 29, 90, 65, 0.5f},     // A^T
      {true, true, 15, 33, 7, 0.0f},       // odd K
      {false, false, 64, 4, 200, 0.0f},    // skinny: 4 columns
      {false, true, 5, 300, 48, 1.0f},     // skinny: 5 rows
  };
  for (const ProductPair& product : products()) {
    for (const Shape& s : shapes) {
      INFO(product.name << " trans_a=" << s.trans_a << " trans_b=" << s.trans_b << " M=" << s.M
                        << " N=" << s.N << " K=" << s.K << " beta=" << s.beta);
      const int64_t lda = s.trans_a ? s.M : s.K;
      const std::vector<float> A = random_vector(s.M * s.K, rng);
      const int64_t b_rows = s.trans_b ? s.N : s.K, b_cols = s.trans_b ? s.K : s.N;
      const std::vector<float> B = random_vector(b_rows * b_cols, rng);
      const std::vector<float> C0 = random_vector(s.M * s.N, rng);

      std::vector<float> from_memory = C0;
      product.memory(s.trans_a, s.trans_b, s.M, s.N, s.K, 0.75f, A.data(), lda, B.data(), b_cols,
                     s.beta, from_memory.data(), s.N);
      const StoredSource stored{&B, b_rows, b_cols};
      std::vector<float> made = C0;
      product.made(s.trans_a, s.trans_b, s.M, s.N, s.K, 0.75f, A.data(), lda,
                   MatrixSource{StoredSource::fill, &stored}, s.beta, made.data(), s.N);
      CHECK_FALSE(stored.asked_outside);
      CHECK(same_bits(made, from_memory));
    }
  }
}

TEST_CASE("wide convolutions that make col in packing compute what im2col and the product do, bit for bit",
          "[cpu][conv][im2col]") {
  std::mt19937 rng(13);
  std::vector<ConvPrecision> precisions = {ConvPrecision::Fp32};
  if (gemm_bf16_supported()) precisions.push_back(ConvPrecision::Bf16);
  for (const ConvPrecision precision : precisions) {
    const PrecisionScope scope(precision);
    const bool bf16 = precision == ConvPrecision::Bf16;
    const MemoryProduct product =
        bf16 ? static_cast<MemoryProduct>(gemm_bf16) : static_cast<MemoryProduct>(sgemm);
    for (const Conv2dGeometry& g : wide_geometries()) {
      INFO((bf16 ? "bf16 " : "fp32 ") << describe(g));
      REQUIRE(std::string(conv_choice(g, ConvPass::Forward).algorithm) == "im2col-in-pack+gemm");
      REQUIRE(std::string(conv_choice(g, ConvPass::BackwardWeight).algorithm) ==
              "im2col-in-pack+gemm");
      const ConvData d = random_conv_data(g, rng);
      const Im2colGeometry u{g.in_channels, g.in_height, g.in_width, g.kernel_h,
                             g.kernel_w,    g.stride,    g.padding};
      const int64_t depth = u.col_rows(), plane = u.col_cols();
      const int64_t in_size = g.in_channels * g.in_height * g.in_width;
      const int64_t out_size = g.out_channels * plane;

      std::vector<float> y(d.dy.size(), std::numeric_limits<float>::quiet_NaN());
      conv2d_forward(host, g, d.x.data(), d.w.data(), nullptr, y.data());
      std::vector<float> y_stored(d.dy.size());
      std::vector<float> dw_stored(d.w.size());
      for (int64_t b = 0; b < g.batch; ++b) {
        const std::vector<float> col = stored_col(u, d.x.data() + b * in_size);
        product(false, false, g.out_channels, plane, depth, 1.0f, d.w.data(), depth, col.data(),
                plane, 0.0f, y_stored.data() + b * out_size, plane);
        product(false, true, g.out_channels, depth, plane, 1.0f, d.dy.data() + b * out_size,
                plane, col.data(), plane, b == 0 ? 0.0f : 1.0f, dw_stored.data(), depth);
      }
      CHECK(same_bits(y, y_stored));

      std::vector<float> dw(d.w.size(), std::numeric_limits<float>::quiet_NaN());
      conv2d_backward_weight(host, g, d.x.data(), d.dy.data(), dw.data(), nullptr);
      CHECK(same_bits(dw, dw_stored));
    }
  }
}
