// Building networks in libtorch's style: nn::make, the variadic Sequential,
// named_modules, and the forward hooks that let tools watch a network run.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <pixgrad/core/ops.h>
#include <pixgrad/layers/activation.h>
#include <pixgrad/layers/conv.h>
#include <pixgrad/layers/forward_hook.h>
#include <pixgrad/layers/normalization.h>
#include <pixgrad/layers/sequential.h>

using namespace pixgrad;

namespace {

std::vector<std::string> names_of(const std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>>& entries) {
  std::vector<std::string> names;
  for (const auto& entry : entries) names.push_back(entry.first);
  return names;
}

}  // namespace

TEST_CASE("nn::make builds a module behind a shared_ptr of its own type", "[layers][module]") {
  const std::shared_ptr<nn::Conv2d> conv = nn::make<nn::Conv2d>(nn::Conv2dOptions(3, 8, 4).stride(2).padding(1));
  CHECK(conv->options.stride() == 2);
  CHECK(conv->options.padding() == 1);
  CHECK(conv->weight.shape() == Shape{8, 3, 4, 4});
  CHECK(nn::make<nn::LeakyReLU>(0.3)->negative_slope == 0.3);
}

TEST_CASE("a variadic Sequential registers its modules in order and chains them", "[layers][module]") {
  const auto conv = nn::make<nn::Conv2d>(nn::Conv2dOptions(2, 4, 3).padding(1));
  const auto norm = nn::make<nn::BatchNorm2d>(nn::BatchNorm2dOptions(4));
  nn::Sequential net(conv, norm, nn::make<nn::LeakyReLU>(0.2));
  REQUIRE(net.size() == 3);
  CHECK(names_of(net.named_children()) == std::vector<std::string>{"0", "1", "2"});
  CHECK(net[0] == conv);
  CHECK(net[1] == norm);
  std::vector<std::string> parameters;
  for (const auto& [name, tensor] : net.named_parameters()) parameters.push_back(name);
  CHECK(parameters == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"});

  const Tensor x = Tensor::normal({2, 2, 5, 5}, 0, 1);
  const Tensor expected = leaky_relu(norm->forward(conv->forward(x)), 0.2);
  CHECK(net.forward(x).to_vector() == expected.to_vector());

  // Nested, through nn::make, with the same result as the vector form.
  const auto nested = nn::make<nn::Sequential>(nn::make<nn::Sequential>(nn::make<nn::ReLU>()), nn::make<nn::Tanh>());
  CHECK(names_of(nested->named_modules()) == std::vector<std::string>{"0", "0.0", "1"});
  nn::Sequential listed(std::vector<std::shared_ptr<nn::Module>>{nn::make<nn::ReLU>(), nn::make<nn::Tanh>()});
  CHECK(nested->forward(x).to_vector() == listed.forward(x).to_vector());
}

TEST_CASE("a forward hook sees every layer run on its thread, and may replace outputs", "[layers][hook]") {
  nn::Sequential net(nn::make<nn::Conv2d>(nn::Conv2dOptions(1, 2, 3).padding(1)), nn::make<nn::ReLU>());
  const Tensor x = Tensor::normal({1, 1, 4, 4}, 0, 1);
  const Tensor plain = net.forward(x);

  std::vector<std::string> seen;
  {
    const nn::ForwardHookGuard hook([&](const nn::Module& module, const Tensor& input, const Tensor& output) {
      seen.push_back(module.name() + " " + shape_str(input.shape()) + " -> " + shape_str(output.shape()));
      return output;
    });
    CHECK(net.forward(x).to_vector() == plain.to_vector());
    {
      // An inner guard replaces the outer one for its scope; it zeroes outputs.
      const nn::ForwardHookGuard zeroing(
          [](const nn::Module&, const Tensor&, const Tensor& output) { return mul(output, 0.0); });
      for (float v : net.forward(x).to_vector()) CHECK(v == 0.0f);
    }
    net.forward(x);
  }
  net.forward(x);  // no hook any more
  const std::vector<std::string> once = {"Conv2d [1, 1, 4, 4] -> [1, 2, 4, 4]", "ReLU [1, 2, 4, 4] -> [1, 2, 4, 4]",
                                         "Sequential [1, 1, 4, 4] -> [1, 2, 4, 4]"};
  std::vector<std::string> twice = once;
  twice.insert(twice.end(), once.begin(), once.end());
  CHECK(seen == twice);
}
