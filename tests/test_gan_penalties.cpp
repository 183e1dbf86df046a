// The WGAN-GP and R1 penalties (models/penalties.h) against PyTorch on a
// small critic: the penalty and its gradient with respect to every critic
// parameter, a second derivative through convolutions and leaky ReLU
// (tests/fixtures/penalties.safetensors, written by
// tools/reference/make_penalty_fixtures.py, whose docstring defines them).
#include <catch2/catch.hpp>

#include <map>
#include <string>

#include <pixgrad/core/ops.h>
#include <pixgrad/core/safetensors.h>
#include <pixgrad/models/penalties.h>
#include "compare.h"
#include "test_paths.h"

using namespace pixgrad;
using testing::compare;
using testing::Comparison;

namespace {

struct Layer {
  const char* name;
  int64_t stride, padding;
};
const Layer kLayers[] = {{"conv1", 2, 1}, {"conv2", 2, 1}, {"conv3", 1, 1}};

class PenaltyFixture {
 public:
  explicit PenaltyFixture(DType dtype)
      : tensors_(safetensors::load(testing::fixtures_dir() + "/penalties.safetensors").tensors) {
    for (const Layer& layer : kLayers)
      for (const char* kind : {".weight", ".bias"}) {
        const std::string name = std::string(layer.name) + kind;
        Tensor parameter = at("D." + name).to(dtype);
        parameter.set_requires_grad();
        parameters_.emplace(name, parameter);
      }
  }

  const Tensor& at(const std::string& key) const {
    const auto found = tensors_.find(key);
    REQUIRE(found != tensors_.end());
    return found->second;
  }

  // The fixture's critic on these parameters.
  models::Critic critic() const {
    return [this](const Tensor& x) {
      Tensor h = x;
      for (size_t i = 0; i < std::size(kLayers); ++i) {
        const Layer& layer = kLayers[i];
        h = conv2d(h, parameters_.at(std::string(layer.name) + ".weight"),
                   parameters_.at(std::string(layer.name) + ".bias"), {layer.stride, layer.padding});
        if (i + 1 < std::size(kLayers)) h = leaky_relu(h, 0.2);
      }
      return h;
    };
  }

  // Checks value and every parameter's gradient against "<prefix>.penalty"
  // and "<prefix>.grad.<param>".
  void check(const std::string& prefix, const Tensor& penalty, const testing::Tolerance& tolerance) const {
    const Comparison value = compare(penalty, at(prefix + ".penalty"), tolerance);
    INFO(prefix << " penalty " << penalty.item() << ": " << value.describe());
    CHECK(value.passed());
    penalty.backward();
    for (const auto& [name, parameter] : parameters_) {
      const Tensor expected = at(prefix + ".grad." + name);
      // The last bias never reaches an input gradient: no gradient at all.
      const Tensor actual = parameter.grad().defined() ? parameter.grad() : Tensor::zeros_like(expected);
      const Comparison gradient = compare(actual, expected, tolerance);
      INFO(prefix << " d/d " << name << ": " << gradient.describe());
      CHECK(gradient.passed());
    }
  }

  DType dtype() const { return parameters_.begin()->second.dtype(); }

 private:
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, Tensor> parameters_;
};

// float64: only the order of summation differs from PyTorch's. float32: the
// rounding of a second derivative of a 3-layer critic.
const testing::Tolerance kFloat64Tolerance{1e-10, 1e-12, 0};
const testing::Tolerance kFloat32Tolerance{1e-4, 1e-4, 0};

}  // namespace

TEST_CASE("WGAN-GP's gradient penalty and its parameter gradients match PyTorch", "[gan][penalty][parity]") {
  for (const DType dtype : {DType::Float64, DType::Float32}) {
    INFO(to_string(dtype));
    const PenaltyFixture fixture(dtype);
    const std::vector<double> alpha = fixture.at("wgangp.alpha").to_double_vector();
    const Tensor points =
        models::interpolate(fixture.at("real").to(dtype), fixture.at("fake").to(dtype), alpha);
    const Tensor penalty = models::gradient_penalty(fixture.critic(), points, 10);
    fixture.check("wgangp", penalty, dtype == DType::Float64 ? kFloat64Tolerance : kFloat32Tolerance);
  }
}

TEST_CASE("R1's penalty and its parameter gradients match PyTorch", "[gan][penalty][parity]") {
  for (const DType dtype : {DType::Float64, DType::Float32}) {
    INFO(to_string(dtype));
    const PenaltyFixture fixture(dtype);
    const Tensor penalty = models::r1_penalty(fixture.critic(), fixture.at("real").to(dtype), 10);
    fixture.check("r1", penalty, dtype == DType::Float64 ? kFloat64Tolerance : kFloat32Tolerance);
  }
}

TEST_CASE("interpolation mixes each sample with its own weight and refuses mismatched batches", "[gan][penalty]") {
  const Tensor real = Tensor::full({2, 1, 2, 2}, 1.0), fake = Tensor::full({2, 1, 2, 2}, -1.0);
  const std::vector<double> mixed = models::interpolate(real, fake, {0.25, 1.0}).to_double_vector();
  for (size_t i = 0; i < 4; ++i) CHECK(mixed[i] == Approx(0.25 * 1 + 0.75 * -1));
  for (size_t i = 4; i < 8; ++i) CHECK(mixed[i] == Approx(1.0));
  CHECK_THROWS_WITH(models::interpolate(real, fake, {0.5}), Catch::Contains("mixing weights"));
  CHECK_THROWS(models::interpolate(real, Tensor::zeros({2, 1, 2, 3}), {0.5, 0.5}));
  // The penalty of a critic that ignores its input is an error, not a zero.
  const models::Critic constant = [](const Tensor&) { return Tensor::ones({1}); };
  CHECK_THROWS_WITH(models::gradient_penalty(constant, real), Catch::Contains("does not depend on its input"));
}

TEST_CASE("interpolation refuses an empty batch", "[gan][penalty]") {
  CHECK_THROWS_WITH(models::interpolate(Tensor::zeros({0, 1, 4, 4}), Tensor::zeros({0, 1, 4, 4}), {}),
                    Catch::Contains("is empty"));
  CHECK_THROWS_WITH(models::interpolate(Tensor(), Tensor::zeros({1, 2}), {0.5}), Catch::Contains("must be defined"));
}
