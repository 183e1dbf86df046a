// Optimisers (optim/optimizer.h) against scalar reference loops written in double,
// and Adam's whole-step entry point against one optimiser per parameter.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <memory>

#include <pixgrad/core/error.h>
#include <pixgrad/core/generator.h>
#include <pixgrad/core/ops.h>
#include "gradcheck.h"
#include <pixgrad/optim/optimizer.h>

using namespace pixgrad;
using Catch::Matchers::Contains;

namespace {

const std::vector<double> kStart{0.5, -1.25, 2.0, 0.0, -0.03, 1e-3};

// A different, fixed gradient for each step.
std::vector<double> gradient_at(int step) {
  std::vector<double> g;
  for (size_t i = 0; i < kStart.size(); ++i) g.push_back(std::sin(1.7 * static_cast<double>(i) + step) * (i + 1) * 0.1);
  return g;
}

Tensor parameter(DType dtype) {
  Tensor p = Tensor::from_vector(kStart, {static_cast<int64_t>(kStart.size())}).to(dtype);
  return p.set_requires_grad();
}

void set_gradient(const Tensor& p, int step) {
  p.set_grad(Tensor::from_vector(gradient_at(step), p.shape()).to(p.dtype()));
}

std::vector<double> reference_adam(const optim::AdamOptions& o, int steps) {
  std::vector<double> p = kStart, m(p.size(), 0.0), v(p.size(), 0.0);
  for (int t = 1; t <= steps; ++t) {
    const std::vector<double> grad = gradient_at(t);
    const double c1 = 1 - std::pow(o.beta1(), t), c2 = 1 - std::pow(o.beta2(), t);
    for (size_t i = 0; i < p.size(); ++i) {
      const double g = grad[i] + o.weight_decay() * p[i];
      m[i] = o.beta1() * m[i] + (1 - o.beta1()) * g;
      v[i] = o.beta2() * v[i] + (1 - o.beta2()) * g * g;
      if (o.placement() == optim::EpsilonPlacement::PyTorch)
        p[i] -= o.lr() / c1 * m[i] / (std::sqrt(v[i]) / std::sqrt(c2) + o.eps());
      else
        p[i] -= o.lr() * std::sqrt(c2) / c1 * m[i] / (std::sqrt(v[i]) + o.eps());
    }
  }
  return p;
}

std::vector<double> reference_sgd(const optim::SGDOptions& o, int steps) {
  std::vector<double> p = kStart, buffer(p.size(), 0.0);
  for (int t = 1; t <= steps; ++t) {
    const std::vector<double> grad = gradient_at(t);
    for (size_t i = 0; i < p.size(); ++i) {
      const double g = grad[i] + o.weight_decay() * p[i];
      buffer[i] = t == 1 ? g : o.momentum() * buffer[i] + g;
      p[i] -= o.lr() * (o.momentum() != 0 ? buffer[i] : g);
    }
  }
  return p;
}

template <typename Optimizer>
void run_steps(Optimizer& optimizer, const Tensor& p, int first, int last) {
  for (int t = first; t <= last; ++t) {
    set_gradient(p, t);
    optimizer.step();
  }
}

// Adam with its whole-step entry point open to the tests.
class OpenAdam : public optim::Adam {
 public:
  using Adam::Adam;
  using Adam::update_all;
};

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// Parameters of sizes around the AVX2 loop's width.
std::vector<Tensor> random_parameters(DType dtype) {
  std::vector<Tensor> parameters;
  for (const int64_t n : {5, 17, 1, 33}) {
    Generator generator(900 + static_cast<uint64_t>(n));
    Tensor values = Tensor::uniform({n}, -1, 1, generator, Device::cpu(), dtype);
    parameters.push_back(values.set_requires_grad());
  }
  return parameters;
}

// The gradient of parameter i at step t; parameter 1 has none on even steps,
// so that its step count lags behind the others'.
Tensor lagging_gradient(const Tensor& parameter, size_t i, int t) {
  if (i == 1 && t % 2 == 0) return Tensor();
  Generator generator(1000 + 10 * static_cast<uint64_t>(t) + i);
  const double scale = t % 2 == 0 ? 1e-6 : 1.0;  // tiny ones, so that eps matters
  return Tensor::uniform(parameter.shape(), -scale, scale, generator, Device::cpu(), parameter.dtype());
}

}  // namespace

TEST_CASE("optimiser options build in libtorch's style, with PyTorch's defaults", "[optim]") {
  const optim::AdamOptions defaults;
  CHECK(defaults.lr() == 1e-3);
  CHECK(defaults.beta1() == 0.9);
  CHECK(defaults.beta2() == 0.999);
  CHECK(defaults.eps() == 1e-8);
  CHECK(defaults.weight_decay() == 0);
  CHECK(defaults.placement() == optim::EpsilonPlacement::PyTorch);

  const optim::AdamOptions pix2pix = optim::AdamOptions(2e-4).beta1(0.5);
  CHECK(pix2pix.lr() == 2e-4);
  CHECK(pix2pix.beta1() == 0.5);
  CHECK(pix2pix.beta2() == 0.999);  // what was not set keeps its default
  optim::AdamOptions chained;
  CHECK(&chained.eps(1e-3).weight_decay(1e-5).placement(optim::EpsilonPlacement::Chainer) == &chained);
  CHECK(chained.eps() == 1e-3);
  CHECK(chained.weight_decay() == 1e-5);
  CHECK(chained.placement() == optim::EpsilonPlacement::Chainer);
  const Tensor p = parameter(DType::Float32);
  const optim::Adam adam({p}, pix2pix);
  CHECK(adam.lr() == 2e-4);
  CHECK(adam.options.beta1() == 0.5);
  CHECK_THROWS_WITH(optim::Adam({p}, optim::AdamOptions().beta1(1.0)), Contains("beta1 1 must be in [0, 1)"));

  const optim::SGDOptions sgd = optim::SGDOptions(0.01).momentum(0.9);
  CHECK(sgd.lr() == 0.01);
  CHECK(sgd.momentum() == 0.9);
  CHECK(sgd.weight_decay() == 0);
  CHECK(optim::SGDOptions().lr() == 1e-3);
  CHECK(optim::SGD({p}, sgd).options.momentum() == 0.9);
  CHECK_THROWS_WITH(optim::SGD({p}, optim::SGDOptions(-1)), Contains("lr -1"));
}

TEST_CASE("Adam matches the reference update for both epsilon placements", "[optim][adam]") {
  const int steps = 6;
  for (const auto placement : {optim::EpsilonPlacement::PyTorch, optim::EpsilonPlacement::Chainer}) {
    for (const double weight_decay : {0.0, 0.1}) {
      // eps large, so that where it sits shows
      const optim::AdamOptions options =
          optim::AdamOptions(0.01).beta1(0.5).eps(1e-3).weight_decay(weight_decay).placement(placement);
      const std::vector<double> expected = reference_adam(options, steps);
      INFO("placement " << (placement == optim::EpsilonPlacement::PyTorch ? "PyTorch" : "Chainer") << ", weight_decay "
                        << weight_decay);
      for (const DType dtype : {DType::Float64, DType::Float32}) {
        const Tensor p = parameter(dtype);
        optim::Adam adam({p}, options);
        run_steps(adam, p, 1, steps);
        const double tolerance = dtype == DType::Float64 ? 1e-14 : 1e-6;
        CHECK(testing::max_relative_error(p.to_double_vector(), expected) < tolerance);
        CHECK(p.is_leaf());
      }
    }
  }
  // The placements really differ while v is small.
  const optim::AdamOptions chainer = optim::AdamOptions().eps(1e-3).placement(optim::EpsilonPlacement::Chainer);
  const optim::AdamOptions pytorch = optim::AdamOptions(chainer).placement(optim::EpsilonPlacement::PyTorch);
  CHECK(testing::max_relative_error(reference_adam(chainer, 2), reference_adam(pytorch, 2)) > 1e-6);
}

TEST_CASE("SGD with momentum and weight decay matches the reference update", "[optim][sgd]") {
  for (const double momentum : {0.0, 0.9}) {
    const optim::SGDOptions options = optim::SGDOptions(0.05).momentum(momentum).weight_decay(0.01);
    const Tensor p = parameter(DType::Float64);
    optim::SGD sgd({p}, options);
    run_steps(sgd, p, 1, 5);
    INFO("momentum " << momentum);
    CHECK(testing::max_relative_error(p.to_double_vector(), reference_sgd(options, 5)) < 1e-14);
    CHECK(sgd.state_dict("").count("0.momentum_buffer") == (momentum != 0 ? 1u : 0u));
  }
}

TEST_CASE("Optimisers skip parameters without a gradient and follow set_lr", "[optim]") {
  const Tensor a = parameter(DType::Float32), b = parameter(DType::Float32);
  optim::Adam adam({a, b});
  CHECK(adam.lr() == 1e-3);
  set_gradient(a, 1);
  adam.step();
  CHECK(b.to_double_vector() == parameter(DType::Float32).to_double_vector());
  const auto state = adam.state_dict("opt.");
  CHECK(state.at("opt.0.step").item() == 1.0);
  CHECK(state.at("opt.1.step").item() == 0.0);

  // Twice the rate, twice the first step (the first Adam step is lr * sign(g) up to eps).
  const Tensor c = parameter(DType::Float64), d = parameter(DType::Float64);
  optim::Adam slow({c}), fast({d});
  fast.set_lr(2e-3);
  set_gradient(c, 1);
  set_gradient(d, 1);
  slow.step();
  fast.step();
  for (size_t i = 0; i < kStart.size(); ++i)
    CHECK(d.to_double_vector()[i] - kStart[i] == Approx(2 * (c.to_double_vector()[i] - kStart[i])));

  adam.zero_grad();
  CHECK_FALSE(a.grad().defined());
}

TEST_CASE("Adam minimises a quadratic through autograd", "[optim][adam]") {
  const Tensor target = Tensor::from_vector(std::vector<float>{1.0f, -2.0f, 0.5f, 3.0f}, {4});
  Tensor p = Tensor::zeros({4}).set_requires_grad();
  optim::Adam adam({p}, optim::AdamOptions(0.05));
  for (int i = 0; i < 500; ++i) {
    adam.zero_grad();
    const Tensor difference = p - target;
    sum(difference * difference).backward();
    adam.step();
  }
  CHECK(testing::max_relative_error(p.to_double_vector(), target.to_double_vector()) < 1e-2);
}

TEST_CASE("Optimiser state_dict round trip continues bit-identically", "[optim][state_dict]") {
  const optim::AdamOptions options = optim::AdamOptions(0.02).placement(optim::EpsilonPlacement::Chainer);
  const Tensor p = parameter(DType::Float32);
  optim::Adam original({p}, options);
  run_steps(original, p, 1, 3);

  const std::map<std::string, Tensor> state = original.state_dict("optimizer_g.");
  CHECK(state.size() == 3);
  CHECK(state.at("optimizer_g.0.step").dtype() == DType::Float64);
  CHECK(state.at("optimizer_g.0.exp_avg").shape() == p.shape());

  Tensor copy = p.detach().clone().set_requires_grad();
  optim::Adam resumed({copy}, options);
  std::map<std::string, Tensor> shared = state;
  shared["optimizer_d.0.step"] = Tensor::zeros({});  // other optimisers' keys are ignored
  resumed.load_state_dict(shared, "optimizer_g.");
  run_steps(original, p, 4, 7);
  run_steps(resumed, copy, 4, 7);
  CHECK(copy.to_vector() == p.to_vector());
  const auto a = original.state_dict(""), b = resumed.state_dict("");
  for (const auto& [key, tensor] : a) CHECK(b.at(key).to_vector() == tensor.to_vector());

  std::map<std::string, Tensor> missing = state;
  missing.erase("optimizer_g.0.exp_avg_sq");
  CHECK_THROWS_WITH(resumed.load_state_dict(missing, "optimizer_g."),
                    Contains("missing key 'optimizer_g.0.exp_avg_sq'"));
  std::map<std::string, Tensor> misshaped = state;
  misshaped["optimizer_g.0.exp_avg"] = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH(resumed.load_state_dict(misshaped, "optimizer_g."),
                    Contains("'optimizer_g.0.exp_avg' has shape [2, 3] in the state but [6] in the optimizer"));
  std::map<std::string, Tensor> bad_step = state;
  bad_step["optimizer_g.0.step"] = Tensor::full({}, 2.5, Device::cpu(), DType::Float64);
  CHECK_THROWS_WITH(resumed.load_state_dict(bad_step, "optimizer_g."), Contains("not a step count"));
  CHECK_THROWS_WITH(resumed.load_state_dict(state, "other."), Contains("missing key 'other.0.step'"));
}

TEST_CASE("Adam and SGD flag a NaN or infinite gradient in the step that read it", "[optim][nan]") {
  for (const DType dtype : {DType::Float32, DType::Float64}) {
    for (const int64_t n : {int64_t{1}, int64_t{7}, int64_t{100003}}) {
      for (const double bad : {std::nan(""), double{INFINITY}, double{-INFINITY}, 0.25}) {
        // The bad value at the first, a middle and the last element (vector body and tail alike).
        for (const int64_t at : {int64_t{0}, n / 2, n - 1}) {
          INFO(to_string(dtype) << ", n " << n << ", value " << bad << " at " << at);
          Tensor param = Tensor::zeros({n}, Device::cpu(), dtype).set_requires_grad();
          std::vector<double> grad(static_cast<size_t>(n), 0.5);
          grad[static_cast<size_t>(at)] = bad;
          param.set_grad(Tensor::from_vector(grad, {n}).to(dtype));
          const double expected = std::isfinite(bad) ? 0 : 1;
          optim::Adam adam({param});
          CHECK_FALSE(adam.nonfinite_gradients().defined());
          adam.step();
          CHECK(adam.nonfinite_gradients().item() == expected);
          optim::SGD sgd({param}, optim::SGDOptions(0.01).momentum(0.9));
          sgd.step();
          CHECK(sgd.nonfinite_gradients().item() == expected);
          // The next step, with finite gradients, clears it.
          param.set_grad(Tensor::full({n}, 0.5, Device::cpu(), dtype));
          adam.step();
          CHECK(adam.nonfinite_gradients().item() == 0);
        }
      }
    }
  }
}

TEST_CASE("an optimiser refuses a parameter listed twice and names a bad option", "[optim][errors]") {
  Tensor p = Tensor::zeros({3});
  p.set_requires_grad();
  CHECK_THROWS_WITH(optim::SGD({p, p}, optim::SGDOptions(0.1)), Contains("parameter 1 is parameter 0 again"));
  CHECK_THROWS_WITH(optim::Adam({p}, optim::AdamOptions(2e-4).beta1(1.5)), Contains("beta1 1.5 must be in [0, 1)"));
  CHECK_THROWS_WITH(optim::Adam({p}, optim::AdamOptions(std::nan(""))), Contains("lr nan must be >= 0"));
}

TEST_CASE("Adam's update_all returns at once on an empty list of updates", "[optim][adam][multi_tensor]") {
  for (const bool single_launch : {true, false}) {
    OpenAdam adam({Tensor::zeros({3}).set_requires_grad()});
    adam.set_single_launch(single_launch);
    adam.update_all({}, Tensor());
    adam.step();  // no gradients: nothing to update either
    CHECK(adam.state_dict("").at("0.step").item() == 0);
  }
}

TEST_CASE("Adam updates CPU parameters with lagging step counts one by one, as an optimiser each would",
          "[optim][adam][multi_tensor]") {
  // The one-launch path takes float32 CUDA parameters that share a step
  // count; these fall back to one update per parameter, with the single
  // launch allowed or not, and must give the bits of a separate optimiser
  // per parameter. (One optimiser's parameters share a dtype and a device:
  // its non-finite flag is one tensor of theirs.)
  const optim::AdamOptions options = optim::AdamOptions(0.01).beta1(0.5).weight_decay(0.1);
  for (const DType dtype : {DType::Float32, DType::Float64}) {
    std::vector<std::vector<Tensor>> runs;
    std::vector<std::unique_ptr<optim::Adam>> optimisers;
    for (const bool single_launch : {true, false}) {
      runs.push_back(random_parameters(dtype));
      optimisers.push_back(std::make_unique<optim::Adam>(runs.back(), options));
      optimisers.back()->set_single_launch(single_launch);
    }
    const std::vector<Tensor> alone = random_parameters(dtype);
    std::vector<std::unique_ptr<optim::Adam>> each;
    for (const Tensor& parameter : alone)
      each.push_back(std::make_unique<optim::Adam>(std::vector<Tensor>{parameter}, options));
    for (int t = 1; t <= 3; ++t) {
      for (size_t i = 0; i < alone.size(); ++i) {
        const Tensor grad = lagging_gradient(alone[i], i, t);
        for (const std::vector<Tensor>& run : runs) run[i].set_grad(grad.defined() ? grad.clone() : grad);
        alone[i].set_grad(grad);
        if (grad.defined()) each[i]->step();
      }
      for (const auto& optimiser : optimisers) optimiser->step();
    }
    for (size_t r = 0; r < runs.size(); ++r) {
      const auto state = optimisers[r]->state_dict("");
      CHECK(state.at("1.step").item() == 2);  // the lagging parameter
      for (size_t i = 0; i < alone.size(); ++i) {
        INFO(to_string(dtype) << ", single launch " << (r == 0) << ", parameter " << i);
        CHECK(same_bits(runs[r][i], alone[i]));
        for (const auto& [name, expected] : each[i]->state_dict(""))
          CHECK(same_bits(state.at(std::to_string(i) + name.substr(1)), expected));
      }
    }
  }
}
