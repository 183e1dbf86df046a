// Modules (layers/): registration and dotted names, train/eval, the norm
// layers against hand computations, state dicts, initialisation.
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>
#include "gradcheck.h"
#include <pixgrad/layers/activation.h>
#include <pixgrad/layers/conv.h>
#include <pixgrad/layers/init.h>
#include <pixgrad/layers/normalization.h>
#include <pixgrad/layers/sequential.h>

using namespace pixgrad;
using Catch::Matchers::Contains;

namespace {

// A module with a bit of everything, as a model would be written.
struct Block : nn::Module {
  Block() : Module("Block") {
    scale = register_parameter("scale", Tensor::ones({2}));
    steps = register_buffer("steps", Tensor::zeros({1}));
    conv = register_module("conv", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(2, 3, 3).padding(1)));
    head = register_module("head", std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
                                       std::make_shared<nn::BatchNorm2d>(nn::BatchNorm2dOptions(3)),
                                       std::make_shared<nn::LeakyReLU>(0.2), std::make_shared<nn::Dropout>(0.5)}));
  }
  Tensor forward(const Tensor& input) override { return head->forward(conv->forward(input)); }

  using Module::register_buffer;
  using Module::register_parameter;

  Tensor scale, steps;
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::Sequential> head;
};

struct Bare : nn::Module {
  Bare() : Module("Bare") {}
};

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<std::string> names;
  for (const auto& entry : named) names.push_back(entry.first);
  return names;
}

std::vector<std::shared_ptr<nn::Module>> descendants(const nn::Module& module) {
  std::vector<std::shared_ptr<nn::Module>> out;
  for (const auto& [name, child] : module.named_children()) {
    out.push_back(child);
    for (const auto& grandchild : descendants(*child)) out.push_back(grandchild);
  }
  return out;
}

}  // namespace

TEST_CASE("Modules register parameters, buffers and children under dotted names", "[layers][module]") {
  Block block;
  CHECK(block.name() == "Block");
  CHECK(names_of(block.named_parameters()) ==
        std::vector<std::string>{"scale", "conv.weight", "conv.bias", "head.0.weight", "head.0.bias"});
  CHECK(names_of(block.named_parameters(false)) == std::vector<std::string>{"scale"});
  CHECK(names_of(block.named_buffers()) ==
        std::vector<std::string>{"steps", "head.0.running_mean", "head.0.running_var"});
  CHECK(block.parameters().size() == 5);
  CHECK(block.named_children().size() == 2);
  CHECK(block.named_children()[1].first == "head");
  CHECK(block.head->size() == 3);
  CHECK((*block.head)[1]->name() == "LeakyReLU");
  // The handles are shared: the member and the registry see the same tensor.
  CHECK(block.named_parameters()[1].second.impl() == block.conv->weight.impl());
  for (const Tensor& p : block.parameters()) CHECK(p.requires_grad());
  CHECK_FALSE(block.steps.requires_grad());

  CHECK_THROWS_WITH(block.register_parameter("scale", Tensor::ones({1})), Contains("'scale' is already registered"));
  CHECK_THROWS_WITH(block.register_buffer("conv", Tensor::ones({1})), Contains("'conv' is already registered"));
  CHECK_THROWS_WITH(block.register_buffer("a.b", Tensor::ones({1})), Contains("invalid member name 'a.b'"));
  CHECK_THROWS_WITH((*block.head)[3], Contains("index 3 out of range for 3 modules"));
  Bare bare;
  CHECK_THROWS_WITH(bare.forward(Tensor::ones({1})), "Module::forward not implemented for Bare");
}

TEST_CASE("train() and eval() reach every descendant", "[layers][module]") {
  Block block;
  CHECK(block.is_training());
  block.eval();
  CHECK_FALSE(block.is_training());
  for (const auto& module : descendants(block)) CHECK_FALSE(module->is_training());
  block.train();
  for (const auto& module : descendants(block)) CHECK(module->is_training());

  // Dropout follows the mode: identity in eval, zeroes about half in training.
  nn::Dropout dropout(0.5);
  const Tensor x = Tensor::ones({1000});
  dropout.eval();
  CHECK(dropout.forward(x).to_vector() == x.to_vector());
  dropout.train();
  int zeros = 0;
  for (float v : dropout.forward(x).to_vector()) {
    CHECK((v == 0.0f || v == 2.0f));
    zeros += v == 0.0f;
  }
  CHECK(zeros > 400);
  CHECK(zeros < 600);
}

TEST_CASE("Sequential chains its modules, activations match their ops", "[layers][module]") {
  const Tensor x = testing::random_tensor({2, 3, 4, 4}, 11, DType::Float32, -2, 2);
  nn::Sequential chain;
  chain.push_back(std::make_shared<nn::ReLU>());
  chain.push_back(std::make_shared<nn::Tanh>());
  chain.push_back(std::make_shared<nn::Sigmoid>());
  CHECK(chain.forward(x).to_vector() == sigmoid(pixgrad::tanh(relu(x))).to_vector());
  CHECK(nn::LeakyReLU(0.3).forward(x).to_vector() == leaky_relu(x, 0.3).to_vector());
  CHECK(names_of(chain.named_parameters()).empty());
}

TEST_CASE("Conv2d and ConvTranspose2d use PyTorch layouts and the conv ops", "[layers][conv]") {
  nn::Conv2d conv(nn::Conv2dOptions(3, 8, 4).stride(2).padding(1));
  CHECK(conv.weight.shape() == Shape{8, 3, 4, 4});
  CHECK(conv.bias.shape() == Shape{8});
  const Tensor x = testing::random_tensor({2, 3, 16, 16}, 12, DType::Float32);
  const Tensor y = conv.forward(x);
  CHECK(y.shape() == Shape{2, 8, 8, 8});
  CHECK(y.to_vector() == conv2d(x, conv.weight, conv.bias, {2, 1}).to_vector());

  nn::ConvTranspose2d up(nn::ConvTranspose2dOptions(8, 5, 4).stride(2).padding(1).bias(false));
  CHECK(up.weight.shape() == Shape{8, 5, 4, 4});
  CHECK_FALSE(up.bias.defined());
  CHECK(names_of(up.named_parameters()) == std::vector<std::string>{"weight"});
  CHECK(up.forward(y).shape() == Shape{2, 5, 16, 16});
  CHECK_THROWS_WITH(nn::Conv2d(nn::Conv2dOptions(3, 0, 4)), Contains("Conv2d: invalid options"));
}

TEST_CASE("Initialisation: Normal(0, 0.02) conv weights, zero biases, reproducible from the seed", "[layers][init]") {
  manual_seed(2024);
  nn::Conv2d big(nn::Conv2dOptions(64, 128, 4));
  const std::vector<double> w = big.weight.to_double_vector();
  double mean = 0, squares = 0;
  for (double v : w) mean += v;
  mean /= static_cast<double>(w.size());
  for (double v : w) squares += (v - mean) * (v - mean);
  const double stddev = std::sqrt(squares / static_cast<double>(w.size() - 1));
  CHECK(std::abs(mean) < 3e-4);  // 0.02 / sqrt(131072) = 5.5e-5 standard error
  CHECK(stddev == Approx(0.02).epsilon(0.01));
  for (double v : big.bias.to_double_vector()) CHECK(v == 0.0);

  nn::BatchNorm2d norm(nn::BatchNorm2dOptions(4));
  CHECK(norm.weight.to_vector() == std::vector<float>(4, 1.0f));
  CHECK(norm.bias.to_vector() == std::vector<float>(4, 0.0f));

  manual_seed(7);
  nn::Conv2d first(nn::Conv2dOptions(3, 4, 3));
  manual_seed(7);
  nn::Conv2d second(nn::Conv2dOptions(3, 4, 3));
  CHECK(first.weight.to_vector() == second.weight.to_vector());

  // The re-initialisation helpers: BatchNorm weights ~ Normal(1, 0.02), as PyTorch pix2pix does.
  Generator generator(99);
  nn::init::normal_(norm.weight, 1.0, 0.02, generator);
  for (double v : norm.weight.to_double_vector()) CHECK(std::abs(v - 1.0) < 0.1);
  Generator replay(99);
  CHECK(norm.weight.to_vector() == Tensor::normal({4}, 1.0, 0.02, replay).to_vector());
  nn::init::constant_(norm.bias, 0.5);
  CHECK(norm.bias.to_vector() == std::vector<float>(4, 0.5f));
  CHECK(norm.weight.requires_grad());
}

TEST_CASE("BatchNorm2d keeps running statistics through the module", "[layers][batch_norm]") {
  const int64_t N = 4, C = 3, S = 5 * 5;
  nn::BatchNorm2d norm(nn::BatchNorm2dOptions(C).momentum(0.2));
  const Tensor x = testing::random_tensor({N, C, 5, 5}, 13, DType::Float32, -1, 3);
  norm.forward(x);
  const std::vector<double> xv = x.to_double_vector();
  const std::vector<double> rm = norm.running_mean.to_double_vector(), rv = norm.running_var.to_double_vector();
  for (int64_t c = 0; c < C; ++c) {
    double mean = 0, squares = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) mean += xv[(n * C + c) * S + s] / (N * S);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) squares += std::pow(xv[(n * C + c) * S + s] - mean, 2);
    CHECK(rm[c] == Approx(0.2 * mean).epsilon(1e-5));
    CHECK(rv[c] == Approx(0.8 + 0.2 * squares / (N * S - 1)).epsilon(1e-5));
  }

  // Eval normalises with the running statistics and leaves them alone.
  norm.eval();
  const std::vector<double> y = norm.forward(x).to_double_vector();
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t c = (i / S) % C;
    CHECK(y[i] == Approx((xv[i] - rm[c]) / std::sqrt(rv[c] + 1e-5)).margin(1e-5));
  }
  CHECK(norm.running_mean.to_double_vector() == rm);

  // Without tracking there are no buffers, and eval uses batch statistics.
  nn::BatchNorm2d untracked(nn::BatchNorm2dOptions(C).track_running_stats(false).affine(false));
  CHECK(untracked.named_buffers().empty());
  CHECK(untracked.named_parameters().empty());
  untracked.eval();
  CHECK(untracked.forward(x).to_vector() == batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor()).to_vector());
  CHECK_THROWS_WITH(norm.forward(Tensor::ones({2, 4, 3, 3})), Contains("BatchNorm2d: expected input [N, 3, H, W]"));
}

TEST_CASE("InstanceNorm2d normalises each sample and channel over its plane", "[layers][instance_norm]") {
  const int64_t N = 3, C = 2, S = 4 * 6;
  nn::InstanceNorm2d norm(nn::InstanceNorm2dOptions(C).affine(true));
  nn::init::normal_(norm.weight, 1.0, 0.5, default_generator());
  nn::init::normal_(norm.bias, 0.0, 0.5, default_generator());
  // Different scales per sample, so batch statistics would give a different answer.
  Tensor x = testing::random_tensor({N, C, 4, 6}, 14, DType::Float32, -1, 1);
  {
    std::vector<float> values = x.to_vector();
    for (size_t i = 0; i < values.size(); ++i) values[i] = values[i] * static_cast<float>(1 + i / (C * S)) + 2.0f;
    x = Tensor::from_vector(values, x.shape());
  }
  const std::vector<double> xv = x.to_double_vector(), y = norm.forward(x).to_double_vector();
  const std::vector<double> w = norm.weight.to_double_vector(), b = norm.bias.to_double_vector();
  for (int64_t plane = 0; plane < N * C; ++plane) {
    double mean = 0, squares = 0;
    for (int64_t s = 0; s < S; ++s) mean += xv[plane * S + s] / S;
    for (int64_t s = 0; s < S; ++s) squares += std::pow(xv[plane * S + s] - mean, 2);
    const double invstd = 1 / std::sqrt(squares / S + 1e-5);
    const size_t c = static_cast<size_t>(plane % C);
    for (int64_t s = 0; s < S; ++s)
      CHECK(y[plane * S + s] == Approx((xv[plane * S + s] - mean) * invstd * w[c] + b[c]).margin(1e-5));
  }
  // Per-sample statistics in eval too, when not tracking.
  norm.eval();
  CHECK(norm.forward(x).to_double_vector() == y);
  CHECK(norm.named_buffers().empty());
}

TEST_CASE("InstanceNorm2d gradients match finite differences", "[layers][instance_norm][gradcheck]") {
  nn::InstanceNorm2d norm(nn::InstanceNorm2dOptions(3).affine(true));
  norm.to(DType::Float64);
  nn::init::normal_(norm.weight, 1.0, 0.3, default_generator());
  nn::init::normal_(norm.bias, 0.0, 0.3, default_generator());
  Tensor x = testing::random_tensor({2, 3, 3, 4}, 15).set_requires_grad();
  testing::check_gradients([&](const std::vector<Tensor>& in) { return norm.forward(in[0]); },
                           {x, norm.weight, norm.bias}, 1e-6, 1e-5);
}

TEST_CASE("InstanceNorm2d with running statistics averages them over the batch", "[layers][instance_norm]") {
  const int64_t N = 2, C = 2, S = 9;
  nn::InstanceNorm2d norm(nn::InstanceNorm2dOptions(C).track_running_stats(true));
  CHECK(names_of(norm.named_buffers()) == std::vector<std::string>{"running_mean", "running_var"});
  const Tensor x = testing::random_tensor({N, C, 3, 3}, 16, DType::Float64, -1, 2);
  norm.to(DType::Float64);
  norm.forward(x);
  const std::vector<double> xv = x.to_double_vector();
  const std::vector<double> rm = norm.running_mean.to_double_vector(), rv = norm.running_var.to_double_vector();
  for (int64_t c = 0; c < C; ++c) {
    double mean_of_means = 0, mean_of_vars = 0;
    for (int64_t n = 0; n < N; ++n) {
      double mean = 0, squares = 0;
      for (int64_t s = 0; s < S; ++s) mean += xv[(n * C + c) * S + s] / S;
      for (int64_t s = 0; s < S; ++s) squares += std::pow(xv[(n * C + c) * S + s] - mean, 2);
      mean_of_means += mean / N;
      mean_of_vars += squares / (S - 1) / N;
    }
    CHECK(rm[c] == Approx(0.1 * mean_of_means).epsilon(1e-12));
    CHECK(rv[c] == Approx(0.9 + 0.1 * mean_of_vars).epsilon(1e-12));
  }
  norm.eval();
  const std::vector<double> y = norm.forward(x).to_double_vector();
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t c = (i / S) % C;
    CHECK(y[i] == Approx((xv[i] - rm[c]) / std::sqrt(rv[c] + 1e-5)).epsilon(1e-12));
  }
}

TEST_CASE("state_dict round-trips into a freshly built module", "[layers][state_dict]") {
  manual_seed(1);
  Block trained;
  trained.forward(testing::random_tensor({2, 2, 6, 6}, 17, DType::Float32));  // moves the running statistics
  const std::map<std::string, Tensor> state = trained.state_dict();
  CHECK(state.size() == 8);
  for (const auto& [name, tensor] : state) {
    CHECK(tensor.is_cpu());
    CHECK_FALSE(tensor.requires_grad());
  }
  CHECK(state.at("conv.weight").impl()->storage != trained.conv->weight.impl()->storage);

  manual_seed(2);
  Block fresh;
  CHECK(fresh.conv->weight.to_vector() != trained.conv->weight.to_vector());
  fresh.load_state_dict(state);
  trained.eval();
  fresh.eval();
  const Tensor x = testing::random_tensor({2, 2, 6, 6}, 18, DType::Float32);
  CHECK(fresh.forward(x).to_vector() == trained.forward(x).to_vector());
  CHECK(fresh.head->named_buffers()[0].second.to_vector() == (*trained.head)[0]->named_buffers()[0].second.to_vector());
  // A loaded float64 state converts into the float32 module.
  std::map<std::string, Tensor> doubled = state;
  doubled["scale"] = Tensor::from_vector(std::vector<double>{3.0, 4.0}, {2});
  fresh.load_state_dict(doubled);
  CHECK(fresh.scale.to_vector() == std::vector<float>{3.0f, 4.0f});
  CHECK(fresh.scale.dtype() == DType::Float32);
}

TEST_CASE("load_state_dict rejects missing, unexpected and mis-shaped keys", "[layers][state_dict]") {
  Block block;
  const std::map<std::string, Tensor> good = block.state_dict();
  const std::vector<float> before = block.conv->weight.to_vector();

  std::map<std::string, Tensor> missing = good;
  missing.erase("head.0.running_var");
  CHECK_THROWS_WITH(block.load_state_dict(missing), Contains("missing keys 'head.0.running_var'"));

  std::map<std::string, Tensor> unexpected = good;
  unexpected["head.1.weight"] = Tensor::ones({3});
  CHECK_THROWS_WITH(block.load_state_dict(unexpected), Contains("unexpected keys 'head.1.weight'"));

  std::map<std::string, Tensor> misshaped = good;
  misshaped["conv.weight"] = Tensor::zeros({3, 2, 2, 2});
  misshaped["conv.bias"] = Tensor::zeros({3});
  CHECK_THROWS_WITH(block.load_state_dict(misshaped),
                    Contains("'conv.weight' has shape [3, 2, 2, 2] in the state but [3, 2, 3, 3] in the module"));
  CHECK_THROWS_WITH(block.load_state_dict(misshaped, /*strict=*/false), Contains("'conv.weight' has shape"));
  CHECK(block.conv->weight.to_vector() == before);  // nothing was copied by the failed loads

  // Non-strict loading skips what is missing or extra.
  std::map<std::string, Tensor> partial{{"conv.bias", Tensor::full({3}, 0.25)}, {"other", Tensor::ones({1})}};
  block.load_state_dict(partial, /*strict=*/false);
  CHECK(block.conv->bias.to_vector() == std::vector<float>(3, 0.25f));
  CHECK(block.conv->weight.to_vector() == before);
}

TEST_CASE("Module::to and zero_grad act on the tensors in place", "[layers][module]") {
  Block block;
  const Tensor held = block.conv->weight;  // e.g. an optimiser's handle
  const Tensor loss = sum(block.forward(testing::random_tensor({2, 2, 5, 5}, 19, DType::Float32)));
  loss.backward();
  CHECK(held.grad().defined());
  block.to(Device::cpu());
  CHECK(held.impl() == block.conv->weight.impl());

  block.to(DType::Float64);
  CHECK(held.dtype() == DType::Float64);
  CHECK(held.grad().dtype() == DType::Float64);
  CHECK(block.steps.dtype() == DType::Float64);
  CHECK(block.forward(testing::random_tensor({1, 2, 5, 5}, 20)).dtype() == DType::Float64);

  block.zero_grad();
  for (const Tensor& p : block.parameters()) CHECK_FALSE(p.grad().defined());
}
