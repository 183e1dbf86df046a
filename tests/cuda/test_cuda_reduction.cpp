// Reductions, the L1 loss, concat, views (batch_slice, reshape), creation and
// the in-place ops on CUDA, against the CPU.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "cuda_testing.h"
#include <pixgrad/core/ops.h>

using namespace pixgrad;
using namespace pixgrad::cuda_testing;
using Catch::Matchers::Contains;

namespace {

// A scalar reduction's rounding error scales with the sum of the magnitudes
// it adds, not with the result (a centred sum nearly cancels): the CPU sums
// in double, a GPU reduction in float in another order, which costs at most
// ~log2(n) float epsilons of sum|x|. 1e-6 of sum|x| is ~17 epsilons; a
// missing or doubled element is off by ~1/n of it.
Tolerance reduction_tolerance(const Tensor& x) {
  double magnitude = 0;
  for (const double v : x.to_double_vector()) magnitude += std::abs(v);
  return Tolerance{1e-5, 0, 1e-6 * magnitude};
}

// Copies, concatenation, fills and views move values without arithmetic.
constexpr Tolerance kExact{0, 0, 0};

const std::vector<Shape> kShapes{{1}, {7}, {1000003}, {3, 5, 7, 11}};

}  // namespace

TEST_CASE("sum and mean on CUDA match the CPU, with gradients", "[cuda][reduction]") {
  const Function sum_of = [](const std::vector<Tensor>& in) { return sum(in[0]); };
  const Function mean_of = [](const std::vector<Tensor>& in) { return mean(in[0]); };
  uint64_t seed = 500;
  for (const Shape& shape : kShapes) {
    // Centred values (the sum is small and the error absolute) and positive
    // ones (the sum is large and the error relative).
    for (const double low : {-1.0, 0.5}) {
      INFO(shape_str(shape) << ", values from " << low);
      const Tensor x = random_tensor(shape, ++seed, low, low + 2);
      // The gradients are the projection's scalar (over n for mean), broadcast.
      {
        INFO("sum");
        check_against_cpu(sum_of, {x}, reduction_tolerance(x), &kElementwiseTolerance);
      }
      {
        INFO("mean");
        const Tensor mean_scale = div(x, static_cast<double>(x.numel()));
        check_against_cpu(mean_of, {x}, reduction_tolerance(mean_scale), &kElementwiseTolerance);
      }
      const Tensor total = sum(x.to(kGpu));
      CHECK(total.is_cuda());
      CHECK(total.shape() == Shape{});
    }
  }
}

TEST_CASE("l1_loss on CUDA matches the CPU, with gradients for both operands", "[cuda][reduction]") {
  const Function f = [](const std::vector<Tensor>& in) { return l1_loss(in[0], in[1]); };
  uint64_t seed = 600;
  for (const Shape& shape : kShapes) {
    INFO(shape_str(shape));
    const Tensor a = random_tensor(shape, ++seed), b = random_tensor(shape, ++seed);
    const Tensor mean_scale = div(sub(a, b), static_cast<double>(a.numel()));
    check_against_cpu(f, {a, b}, reduction_tolerance(mean_scale), &kElementwiseTolerance);
  }
}

TEST_CASE("concat on CUDA matches the CPU along every dimension, and splits the gradient", "[cuda][shape]") {
  // Three pieces of different extents along `dim`, the first used twice so
  // its gradient gathers two slices.
  for (const int64_t dim : {0, 1, 2, 3}) {
    INFO("dim " << dim);
    std::vector<Tensor> pieces;
    for (const int64_t extent : {2, 5, 1}) {
      Shape shape{3, 4, 5, 7};
      shape[static_cast<size_t>(dim)] = extent;
      pieces.push_back(random_tensor(shape, 700 + 10 * static_cast<uint64_t>(dim) + static_cast<uint64_t>(extent)));
    }
    const Function f = [dim](const std::vector<Tensor>& in) { return concat({in[0], in[1], in[2], in[0]}, dim); };
    check_against_cpu(f, pieces, kExact);
  }
  INFO("U-Net skip: [2, 64, 128, 128] and [2, 64, 128, 128] along channels");
  const Function skip = [](const std::vector<Tensor>& in) { return concat({in[0], in[1]}, 1); };
  check_against_cpu(skip, {random_tensor({2, 64, 128, 128}, 751), random_tensor({2, 64, 128, 128}, 752)}, kExact);
}

TEST_CASE("batch_slice and reshape on CUDA view the same elements as on the CPU", "[cuda][shape]") {
  const Tensor x = random_tensor({5, 3, 4, 7}, 801);
  const std::vector<std::pair<std::string, Function>> views{
      {"batch_slice(2, 2)", [](const std::vector<Tensor>& in) { return in[0].batch_slice(2, 2); }},
      {"tanh(batch_slice(3, 2).reshape)",
       [](const std::vector<Tensor>& in) { return tanh(in[0].batch_slice(3, 2).reshape({2, 84})); }},
      {"reshape then batch_slice",
       [](const std::vector<Tensor>& in) { return mul(in[0].reshape({15, 28}).batch_slice(4, 9), 2.0); }},
      {"two slices added",
       [](const std::vector<Tensor>& in) { return add(in[0].batch_slice(0, 2), in[0].batch_slice(3, 2)); }},
  };
  for (const auto& [name, f] : views) {
    INFO(name);
    check_against_cpu(f, {x}, kElementwiseTolerance);
  }
  // A view shares its base's storage on the device too.
  const Tensor on_gpu = x.to(kGpu);
  const Tensor slice = on_gpu.batch_slice(1, 3);
  fill_(slice, 9);
  const std::vector<float> values = on_gpu.to_vector();
  const std::vector<float> original = x.to_vector();
  const size_t per_item = 3 * 4 * 7;
  for (size_t i = 0; i < values.size(); ++i) {
    const bool inside = i >= per_item && i < 4 * per_item;
    if (inside ? values[i] != 9 : values[i] != original[i]) FAIL("element " << i << " is " << values[i]);
  }
}

TEST_CASE("full, zeros, ones and fill_ on CUDA set exactly the requested value", "[cuda][creation]") {
  for (const Shape& shape : kShapes) {
    INFO(shape_str(shape));
    const Tensor full = Tensor::full(shape, -0.1, kGpu);
    CHECK(full.is_cuda());
    CHECK(full.shape() == shape);
    CHECK(count_unequal(full, -0.1f) == 0);
    CHECK(count_unequal(Tensor::zeros(shape, kGpu), 0.0f) == 0);
    CHECK(count_unequal(Tensor::ones(shape, kGpu), 1.0f) == 0);
    CHECK(Tensor::zeros_like(full).is_cuda());
    fill_(full, 2.5);
    CHECK(count_unequal(full, 2.5f) == 0);
  }
  CHECK_THROWS_WITH(Tensor::zeros({2}, kGpu, DType::Float64), Contains("float64"));
}

TEST_CASE("add_ on CUDA accumulates like the CPU, also into views and leaf gradients", "[cuda][inplace]") {
  for (const Shape& shape : kShapes) {
    INFO(shape_str(shape));
    const Tensor start = random_tensor(shape, 901);
    const Tensor on_cpu = start.clone(), on_gpu = start.to(kGpu);
    for (uint64_t i = 0; i < 3; ++i) {
      const Tensor source = random_tensor(shape, 910 + i, -3, 3);
      add_(on_cpu, source);
      add_(on_gpu, source.to(kGpu));
    }
    CHECK(on_gpu.is_cuda());
    PIXGRAD_CHECK_CLOSE(on_gpu, on_cpu, kExact);
  }

  // Into a view: only the slice changes.
  const Tensor base = Tensor::zeros({4, 1000}, kGpu);
  add_(base.batch_slice(1, 2), Tensor::full({2, 1000}, 1.5, kGpu));
  const std::vector<float> values = base.to_vector();
  for (size_t i = 0; i < values.size(); ++i) {
    const float expected = i >= 1000 && i < 3000 ? 1.5f : 0.0f;
    if (values[i] != expected) FAIL("element " << i << " is " << values[i] << ", expected " << expected);
  }

  // Two backward passes add into the same .grad.
  const Tensor x = random_tensor({1000003}, 920);
  const Tensor r1 = random_tensor({1000003}, 921), r2 = random_tensor({1000003}, 922);
  const Tensor x_cpu = leaf_on(x, Device::cpu()), x_gpu = leaf_on(x, kGpu);
  sum(mul(tanh(x_cpu), r1)).backward();
  sum(mul(sigmoid(x_cpu), r2)).backward();
  sum(mul(tanh(x_gpu), r1.to(kGpu))).backward();
  sum(mul(sigmoid(x_gpu), r2.to(kGpu))).backward();
  REQUIRE(x_gpu.grad().defined());
  CHECK(x_gpu.grad().is_cuda());
  PIXGRAD_CHECK_CLOSE(x_gpu.grad(), x_cpu.grad(), kElementwiseTolerance);

  CHECK_THROWS_WITH(add_(Tensor::zeros({3}, kGpu), Tensor::zeros({3})), Contains("add_") && Contains("cpu"));
}
