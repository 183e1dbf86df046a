// batch_norm with its epilogue (dropout, then ReLU or leaky ReLU, in the
// normalisation's own pass): the same bits as the separate ops, forward and
// backward, the same generator draws, gradients by finite differences, and
// the layers' and models' use of it.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/kernels/norm_epilogue.h>
#include <pixgrad/kernels/philox.h>
#include <pixgrad/layers/forward_hook.h>
#include <pixgrad/layers/normalization.h>
#include <pixgrad/models/discriminator.h>
#include <pixgrad/models/norm_layer.h>
#include "gradcheck.h"

using namespace pixgrad;

namespace {

struct Outcome {
  std::vector<double> y, grad_x, grad_w, grad_b;
  uint64_t generator_offset;
};

// One forward and backward of batch_norm followed by `after`, fused or as
// separate ops, from the same inputs and generator state.
Outcome run(bool fused, const Shape& shape, DType dtype, const BatchNormEpilogue& after, bool training,
            uint64_t seed) {
  Tensor x = testing::random_tensor(shape, seed, dtype, -2, 2).set_requires_grad();
  Tensor w = testing::random_tensor({shape[1]}, seed + 1, dtype, -1.5, 1.5).set_requires_grad();
  Tensor b = testing::random_tensor({shape[1]}, seed + 2, dtype).set_requires_grad();
  Tensor running_mean = testing::random_tensor({shape[1]}, seed + 3, dtype);
  Tensor running_var = testing::random_tensor({shape[1]}, seed + 4, dtype, 0.5, 2);
  const Tensor upstream = testing::random_tensor(shape, seed + 5, dtype);
  Generator generator(seed * 7 + 1, 3);
  BatchNormEpilogue with_generator = after;
  with_generator.generator = &generator;
  const BatchNormParams params{training, 0.1, 1e-5};
  const Tensor y = fused ? batch_norm(x, w, b, running_mean, running_var, params, with_generator)
                         : apply_epilogue(batch_norm(x, w, b, running_mean, running_var, params), with_generator,
                                          training);
  sum(mul(y, upstream)).backward();
  return {y.to_double_vector(), x.grad().to_double_vector(), w.grad().to_double_vector(),
          b.grad().to_double_vector(), generator.offset()};
}

std::string describe(const BatchNormEpilogue& after, bool training) {
  const char* names[] = {"none", "relu", "leaky_relu"};
  return std::string(names[static_cast<int>(after.activation)]) + " slope " + std::to_string(after.negative_slope) +
         " dropout " + std::to_string(after.dropout) + (training ? " training" : " eval");
}

std::vector<BatchNormEpilogue> epilogues() {
  std::vector<BatchNormEpilogue> all;
  for (double p : {0.0, 0.5, 1.0}) {
    all.push_back({NormActivation::None, 0.01, p});
    all.push_back({NormActivation::Relu, 0.01, p});
    all.push_back({NormActivation::LeakyRelu, 0.2, p});
    all.push_back({NormActivation::LeakyRelu, 0.0, p});
    all.push_back({NormActivation::LeakyRelu, -0.3, p});  // not fusable: batch_norm runs it as separate ops
  }
  return all;
}

}  // namespace

TEST_CASE("batch_norm's epilogue gives the separate ops' bits, forward and backward", "[ops][batch_norm][epilogue]") {
  const std::vector<Shape> shapes{{2, 3, 5, 7}, {1, 4, 3, 1}, {3, 2, 4, 4}};
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (const Shape& shape : shapes) {
      for (bool training : {true, false}) {
        for (const BatchNormEpilogue& after : epilogues()) {
          INFO(describe(after, training) << " shape " << shape_str(shape) << " " << to_string(dtype));
          const Outcome fused = run(true, shape, dtype, after, training, 40);
          const Outcome separate = run(false, shape, dtype, after, training, 40);
          CHECK(fused.y == separate.y);
          CHECK(fused.grad_x == separate.grad_x);
          CHECK(fused.grad_w == separate.grad_w);
          CHECK(fused.grad_b == separate.grad_b);
          CHECK(fused.generator_offset == separate.generator_offset);
        }
      }
    }
  }
}

TEST_CASE("batch_norm's epilogue differentiates by finite differences", "[ops][batch_norm][epilogue][gradcheck]") {
  Tensor x = testing::random_tensor({2, 3, 3, 5}, 81).set_requires_grad();
  Tensor w = testing::random_tensor({3}, 82, DType::Float64, 0.5, 1.5).set_requires_grad();
  Tensor b = testing::random_tensor({3}, 83).set_requires_grad();
  for (const BatchNormEpilogue& after : {BatchNormEpilogue{NormActivation::LeakyRelu, 0.2, 0.4},
                                         BatchNormEpilogue{NormActivation::Relu, 0.0, 0.5},
                                         BatchNormEpilogue{NormActivation::None, 0.0, 0.3}}) {
    INFO(describe(after, true));
    testing::check_gradients(
        [&](const std::vector<Tensor>& in) {
          Generator fixed(11);  // the same mask on every evaluation
          BatchNormEpilogue with_fixed = after;
          with_fixed.generator = &fixed;
          return batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), {true}, with_fixed);
        },
        {x, w, b}, 1e-6, 1e-5);
  }
}

TEST_CASE("the epilogue's masks of a pack of four are its elements' masks", "[ops][epilogue]") {
  // The CUDA kernels draw one Philox block per aligned pack of four elements.
  kernels::NormEpilogue e;
  e.dropout = true;
  e.threshold = 0.4f;
  e.keep_scale = 1 / 0.6;
  e.seed = 0x1234567890ull;
  e.offset = 17;
  for (uint64_t pack = 0; pack < 300; ++pack) {
    float four[4], one[1];
    kernels::epilogue_pack_masks<4>(e, pack, four);
    for (int k = 0; k < 4; ++k) {
      kernels::epilogue_pack_masks<1>(e, 4 * pack + k, one);
      REQUIRE(four[k] == one[0]);
      // dropout()'s mask (kernels/cpu/dropout.cpp) for the same element
      const float expected = philox::uniform(e.seed, e.offset, 4 * pack + k) >= e.threshold
                                 ? static_cast<float>(e.keep_scale)
                                 : 0.0f;
      REQUIRE(one[0] == expected);
    }
  }
  e.dropout = false;
  float four[4];
  kernels::epilogue_pack_masks<4>(e, 5, four);
  CHECK((four[0] == 1 && four[1] == 1 && four[2] == 1 && four[3] == 1));
}

TEST_CASE("batch_norm's epilogue rejects a dropout probability outside [0, 1]", "[ops][epilogue][errors]") {
  const Tensor x = Tensor::ones({2, 3, 4, 4});
  CHECK_THROWS_WITH(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), {}, {NormActivation::None, 0, 1.5}),
                    Catch::Matchers::Contains("batch_norm") && Catch::Matchers::Contains("1.5"));
}

TEST_CASE("norm layers fuse the epilogue unless something must see their own output", "[layers][epilogue]") {
  const Tensor input = testing::random_tensor({2, 4, 3, 5}, 91, DType::Float32);
  const BatchNormEpilogue after{NormActivation::LeakyRelu, 0.2, 0.5};
  for (bool instance : {false, true}) {
    INFO((instance ? "InstanceNorm2d" : "BatchNorm2d"));
    const auto make = [&]() -> std::shared_ptr<nn::Module> {
      if (instance) return std::make_shared<nn::InstanceNorm2d>(nn::InstanceNorm2dOptions(4).affine(true));
      return std::make_shared<nn::BatchNorm2d>(nn::BatchNorm2dOptions(4));
    };
    const auto forward = [&](nn::Module& norm, const BatchNormEpilogue& e) {
      if (instance) return static_cast<nn::InstanceNorm2d&>(norm).forward(input, e);
      return static_cast<nn::BatchNorm2d&>(norm).forward(input, e);
    };
    manual_seed(5);
    const auto norm = make();
    const Tensor fused = forward(*norm, after);
    manual_seed(5);
    const auto reference_norm = make();
    const Tensor separate = apply_epilogue(reference_norm->forward(input), after, true);
    CHECK(fused.to_vector() == separate.to_vector());

    // A hook sees the norm's own output; the epilogue follows what the hook returns.
    manual_seed(5);
    const auto hooked = make();
    std::vector<std::vector<float>> seen;
    Tensor with_hook;
    {
      const nn::ForwardHookGuard hook([&](const nn::Module&, const Tensor&, const Tensor& output) {
        seen.push_back(output.to_vector());
        return output;
      });
      with_hook = forward(*hooked, after);
    }
    REQUIRE(seen.size() == 1);
    CHECK(seen[0] == reference_norm->forward(input).to_vector());
    CHECK(with_hook.to_vector() == separate.to_vector());

    // Eval: no dropout, the activation still applied.
    const auto in_eval = make(), reference_in_eval = make();
    in_eval->eval();
    reference_in_eval->eval();
    const std::vector<float> eval = forward(*in_eval, after).to_vector();
    CHECK(eval == apply_epilogue(reference_in_eval->forward(input), after, false).to_vector());
    CHECK(eval == forward(*in_eval, {NormActivation::LeakyRelu, 0.2, 0.0}).to_vector());
  }
}

TEST_CASE("apply_norm's dropout follows the caller's mode, not the norm's", "[models][epilogue]") {
  const Tensor input = testing::random_tensor({2, 4, 3, 5}, 95, DType::Float32);
  const BatchNormEpilogue after = BatchNormEpilogue::leaky_relu(0.2, 0.5);
  for (bool caller_training : {true, false}) {
    INFO("caller " << (caller_training ? "training" : "eval") << ", norm in the other mode");
    const auto make = [&] {
      auto norm = std::make_shared<nn::BatchNorm2d>(nn::BatchNorm2dOptions(4));
      if (caller_training) norm->eval();  // a norm frozen while the model trains, or the reverse
      return norm;
    };
    const auto norm = make(), reference = make();
    manual_seed(7);
    const std::vector<float> fused = models::apply_norm(norm, input, after, caller_training).to_vector();
    const uint64_t offset = default_generator().offset();
    manual_seed(7);
    CHECK(fused == apply_epilogue(reference->forward(input), after, caller_training).to_vector());
    CHECK(default_generator().offset() == offset);
    CHECK((offset > 0) == caller_training);
  }
}

TEST_CASE("a PatchGAN conv block fuses its leaky ReLU into the norm in training and in eval", "[models][epilogue]") {
  models::ConvBlock block;
  block.conv = std::make_shared<nn::Conv2d>(nn::Conv2dOptions(3, 4, 4).stride(2).padding(1));
  block.norm = std::make_shared<nn::BatchNorm2d>(nn::BatchNorm2dOptions(4));
  const Tensor input = testing::random_tensor({1, 3, 8, 8}, 96, DType::Float32).set_requires_grad();
  for (bool training : {true, false}) {
    INFO((training ? "training" : "eval"));
    block.norm->train(training);
    const Tensor output = block.forward(input);
    REQUIRE(output.grad_fn());
    CHECK(output.grad_fn()->op == "batch_norm");  // not a separate leaky_relu after it
  }
}
