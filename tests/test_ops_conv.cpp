// conv2d and conv_transpose2d as differentiable ops: forward against a naive
// loop written here, gradients against finite differences (double), and the
// fast float kernels against the double path on the same inputs.
#include <catch2/catch.hpp>

#include <pixgrad/core/ops.h>
#include "gradcheck.h"

using namespace pixgrad;
using Catch::Matchers::Contains;

namespace {

struct ConvCase {
  int64_t batch, in_channels, out_channels, height, width, kernel, stride, padding;
  bool bias;
};

// Small shapes with odd sizes, stride 2, padding, batch > 1.
const ConvCase kCases[] = {
    {1, 1, 1, 5, 5, 3, 1, 0, false}, {2, 3, 4, 7, 6, 3, 1, 1, true},  {3, 2, 5, 9, 7, 4, 2, 1, true},
    {1, 4, 3, 6, 8, 1, 1, 0, true},  {2, 3, 2, 5, 5, 3, 2, 2, false}, {1, 2, 3, 4, 4, 4, 2, 1, true},
};

// out[n,o,y,x] = b[o] + sum_{c,i,j} in[n,c,y*s-p+i,x*s-p+j] * w[o,c,i,j]
std::vector<double> naive_conv2d(const ConvCase& c, const std::vector<double>& in, const std::vector<double>& w,
                                 const std::vector<double>& b) {
  const int64_t oh = (c.height + 2 * c.padding - c.kernel) / c.stride + 1;
  const int64_t ow = (c.width + 2 * c.padding - c.kernel) / c.stride + 1;
  std::vector<double> out(c.batch * c.out_channels * oh * ow);
  for (int64_t n = 0; n < c.batch; ++n)
    for (int64_t o = 0; o < c.out_channels; ++o)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t x = 0; x < ow; ++x) {
          double acc = b.empty() ? 0 : b[o];
          for (int64_t ch = 0; ch < c.in_channels; ++ch)
            for (int64_t i = 0; i < c.kernel; ++i)
              for (int64_t j = 0; j < c.kernel; ++j) {
                const int64_t iy = y * c.stride - c.padding + i, ix = x * c.stride - c.padding + j;
                if (iy < 0 || iy >= c.height || ix < 0 || ix >= c.width) continue;
                acc += in[((n * c.in_channels + ch) * c.height + iy) * c.width + ix] *
                       w[((o * c.in_channels + ch) * c.kernel + i) * c.kernel + j];
              }
          out[((n * c.out_channels + o) * oh + y) * ow + x] = acc;
        }
  return out;
}

// Scatter form: every input pixel adds w * in to a k x k window of the output.
std::vector<double> naive_conv_transpose2d(const ConvCase& c, const std::vector<double>& in,
                                           const std::vector<double>& w, const std::vector<double>& b) {
  const int64_t oh = (c.height - 1) * c.stride - 2 * c.padding + c.kernel;
  const int64_t ow = (c.width - 1) * c.stride - 2 * c.padding + c.kernel;
  std::vector<double> out(c.batch * c.out_channels * oh * ow, 0.0);
  for (int64_t n = 0; n < c.batch; ++n)
    for (int64_t o = 0; o < c.out_channels; ++o)
      for (int64_t p = 0; p < oh * ow; ++p) out[(n * c.out_channels + o) * oh * ow + p] = b.empty() ? 0 : b[o];
  for (int64_t n = 0; n < c.batch; ++n)
    for (int64_t ch = 0; ch < c.in_channels; ++ch)
      for (int64_t y = 0; y < c.height; ++y)
        for (int64_t x = 0; x < c.width; ++x)
          for (int64_t o = 0; o < c.out_channels; ++o)
            for (int64_t i = 0; i < c.kernel; ++i)
              for (int64_t j = 0; j < c.kernel; ++j) {
                const int64_t oy = y * c.stride - c.padding + i, ox = x * c.stride - c.padding + j;
                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                out[((n * c.out_channels + o) * oh + oy) * ow + ox] +=
                    in[((n * c.in_channels + ch) * c.height + y) * c.width + x] *
                    w[((ch * c.out_channels + o) * c.kernel + i) * c.kernel + j];
              }
  return out;
}

struct ConvInputs {
  Tensor input, weight, bias;
};

ConvInputs make_inputs(const ConvCase& c, bool transposed, DType dtype, uint64_t seed) {
  const Shape weight_shape = transposed ? Shape{c.in_channels, c.out_channels, c.kernel, c.kernel}
                                        : Shape{c.out_channels, c.in_channels, c.kernel, c.kernel};
  ConvInputs in{testing::random_tensor({c.batch, c.in_channels, c.height, c.width}, seed, dtype),
                testing::random_tensor(weight_shape, seed + 1, dtype), Tensor()};
  if (c.bias) in.bias = testing::random_tensor({c.out_channels}, seed + 2, dtype);
  return in;
}

Tensor apply(bool transposed, const std::vector<Tensor>& in, const ConvCase& c) {
  const ConvParams params{c.stride, c.padding};
  const Tensor bias = in.size() > 2 ? in[2] : Tensor();
  return transposed ? conv_transpose2d(in[0], in[1], bias, params) : conv2d(in[0], in[1], bias, params);
}

void check_op(bool transposed) {
  uint64_t seed = transposed ? 500 : 100;
  for (const ConvCase& c : kCases) {
    seed += 10;
    INFO("batch " << c.batch << " channels " << c.in_channels << "->" << c.out_channels << " size " << c.height << "x"
                  << c.width << " kernel " << c.kernel << " stride " << c.stride << " padding " << c.padding);
    // Forward, float kernels against the naive definition.
    const ConvInputs f32 = make_inputs(c, transposed, DType::Float32, seed);
    std::vector<Tensor> args{f32.input, f32.weight};
    if (c.bias) args.push_back(f32.bias);
    const std::vector<double> bias_values = c.bias ? f32.bias.to_double_vector() : std::vector<double>();
    const std::vector<double> expected =
        transposed ? naive_conv_transpose2d(c, f32.input.to_double_vector(), f32.weight.to_double_vector(), bias_values)
                   : naive_conv2d(c, f32.input.to_double_vector(), f32.weight.to_double_vector(), bias_values);
    CHECK(testing::max_relative_error(apply(transposed, args, c).to_double_vector(), expected) < 1e-5);

    // Backward, double, against finite differences.
    const ConvInputs f64 = make_inputs(c, transposed, DType::Float64, seed);
    std::vector<Tensor> leaves{f64.input, f64.weight};
    if (c.bias) leaves.push_back(f64.bias);
    for (Tensor& leaf : leaves) leaf.set_requires_grad();
    testing::check_gradients([&](const std::vector<Tensor>& in) { return apply(transposed, in, c); }, leaves);

    // Backward, float kernels against the double path on the same values.
    for (Tensor& leaf : args) leaf.set_requires_grad();
    const Tensor projection = testing::random_tensor(apply(transposed, args, c).shape(), seed + 7, DType::Float64);
    for (Tensor& leaf : leaves) leaf.zero_grad();
    sum(mul(apply(transposed, leaves, c), projection)).backward();
    sum(mul(apply(transposed, args, c), projection.to(DType::Float32))).backward();
    for (size_t i = 0; i < args.size(); ++i)
      CHECK(testing::max_relative_error(args[i].grad().to_double_vector(), leaves[i].grad().to_double_vector()) < 1e-5);
  }
}

}  // namespace

TEST_CASE("conv2d forward and backward", "[ops][conv][gradcheck]") { check_op(false); }

TEST_CASE("conv_transpose2d forward and backward", "[ops][conv][gradcheck]") { check_op(true); }

TEST_CASE("conv shape errors name the op and the shapes", "[ops][conv][errors]") {
  const Tensor x = Tensor::zeros({1, 3, 8, 8});
  CHECK_THROWS_WITH(conv2d(x, Tensor::zeros({4, 2, 3, 3})), Contains("conv2d") && Contains("[1, 3, 8, 8]") &&
                                                                 Contains("[4, 2, 3, 3]"));
  CHECK_THROWS_WITH(conv2d(x, Tensor::zeros({4, 3, 11, 11})), Contains("conv2d") && Contains("larger"));
  CHECK_THROWS_WITH(conv2d(Tensor::zeros({3, 8, 8}), Tensor::zeros({4, 3, 3, 3})), Contains("[N, C, H, W]"));
  CHECK_THROWS_WITH(conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor::zeros({5})), Contains("bias") && Contains("[5]"));
  CHECK_THROWS_WITH(conv_transpose2d(x, Tensor::zeros({4, 3, 4, 4})), Contains("conv_transpose2d") &&
                                                                          Contains("[4, 3, 4, 4]"));
  CHECK_THROWS_WITH(conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor(), {0, 1}), Contains("stride"));
}
