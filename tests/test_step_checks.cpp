// The checks the CUDA suite makes of a whole pix2pix step and of the
// optimisers, tried on the CPU: they must pass a float32 step against the
// same step in float64, and fail when a bug is injected into the reference
// (a flipped sign, a dropped loss term, a wrong scale). A check that cannot
// fail is no check; these show what the CUDA tests would catch.
#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "compare.h"
#include <pixgrad/core/generator.h>
#include <pixgrad/core/ops.h>
#include "gradcheck.h"
#include <pixgrad/optim/optimizer.h>
#include "step_gradients.h"

using namespace pixgrad;
using namespace pixgrad::testing;

namespace {

const char* preset_name(models::Preset preset) { return preset == models::Preset::Paper ? "paper" : "chainer"; }

// One step of a fresh small model (seed 21, batch 2) in `dtype` on the CPU,
// with `mutate` applied to the gradients before they are read.
StepGradients step_gradients(const models::Pix2PixOptions& options, DType dtype,
                             const GradientMutation& mutate = {}) {
  manual_seed(21);
  models::Pix2Pix model(options);
  Tensor input = testing::random_tensor({2, 3, 32, 32}, 8001, DType::Float32);
  Tensor target = testing::random_tensor({2, 3, 32, 32}, 8002, DType::Float32);
  if (dtype == DType::Float64) {
    model.generator().to(dtype);
    model.discriminator().to(dtype);
    input = input.to(dtype);
    target = target.to(dtype);
  }
  manual_seed(5);  // the dropout masks
  return capture_step(model, input, target, mutate);
}

// Applies `change` to the gradient of `name` ("G.<parameter>" or "D.<parameter>").
GradientMutation change_gradient(const std::string& name, std::function<Tensor(const Tensor&)> change) {
  return [name, change](models::Network network, nn::Module& module) {
    const std::string prefix = network == models::Network::Generator ? "G." : "D.";
    for (const auto& [parameter_name, parameter] : module.named_parameters())
      if (prefix + parameter_name == name) parameter.set_grad(change(parameter.grad()));
  };
}

// Scales every gradient of one network.
GradientMutation scale_network(models::Network which, double factor) {
  return [which, factor](models::Network network, nn::Module& module) {
    if (network != which) return;
    for (const Tensor& parameter : module.parameters()) parameter.set_grad(mul(parameter.grad(), factor));
  };
}

// Gradients that are zero in exact arithmetic (step_gradients.h): rounding
// noise, which no mutation of the loss changes visibly.
bool cancelled(const StepGradients& step, const std::string& name) {
  return rms(step.gradients.at(name).to_double_vector()) <
         1e3 * kCancelledGradientFloor * network_scales(step.gradients).at(name.substr(0, 2));
}

std::string listing(const std::map<std::string, std::string>& failures) {
  std::string text;
  for (const auto& [name, why] : failures) text += "\n  " + name + ": " + why;
  return text;
}

}  // namespace

TEST_CASE("a float32 pix2pix step's gradients match float64 within the CUDA step tolerance, with room",
          "[compare][pix2pix]") {
  for (const models::Preset preset : {models::Preset::Paper, models::Preset::Chainer}) {
    INFO(preset_name(preset) << " preset");
    const models::Pix2PixOptions options = small_step_options(preset);
    const StepGradients single = step_gradients(options, DType::Float32);
    const StepGradients reference = step_gradients(options, DType::Float64);
    const std::map<std::string, std::string> failures =
        mismatched_gradients(single, reference, kStepTolerance.scaled(0.25));
    INFO("gradients outside a quarter of the tolerance:" << listing(failures));
    CHECK(failures.empty());
    CHECK(single.gradients.size() == reference.gradients.size());
    CHECK(compare_losses(single.losses, reference.losses, kStepTolerance.scaled(0.25)).passed());
  }
}

TEST_CASE("the step gradient check fails a reference with a flipped sign, a dropped term or a wrong scale",
          "[compare][pix2pix]") {
  for (const models::Preset preset : {models::Preset::Paper, models::Preset::Chainer}) {
    INFO(preset_name(preset) << " preset");
    const models::Pix2PixOptions options = small_step_options(preset);
    const StepGradients correct = step_gradients(options, DType::Float32);
    // The correct step against itself (recomputed) passes: the check is deterministic.
    CHECK(mismatched_gradients(step_gradients(options, DType::Float32), correct, kStepTolerance).empty());

    SECTION("one gradient with its sign flipped") {
      const StepGradients flipped =
          step_gradients(options, DType::Float32, change_gradient("G.down2.weight", [](const Tensor& g) {
                           return neg(g);
                         }));
      const auto failures = mismatched_gradients(correct, flipped, kStepTolerance);
      INFO(listing(failures));
      CHECK(failures.count("G.down2.weight") == 1);
    }
    SECTION("the L1 term dropped from G's loss") {
      models::Pix2PixOptions no_l1 = options;
      no_l1.lambda_l1 = 0;
      const auto failures = mismatched_gradients(correct, step_gradients(no_l1, DType::Float32), kStepTolerance);
      INFO(listing(failures));
      // Every G gradient changes; D's do not (D's loss has no L1 term).
      for (const auto& [name, gradient] : correct.gradients) {
        INFO(name);
        if (cancelled(correct, name)) continue;
        CHECK(failures.count(name) == (name.rfind("G.", 0) == 0 ? 1u : 0u));
      }
    }
    SECTION("D's loss not halved (every D gradient twice as large)") {
      const auto failures = mismatched_gradients(
          correct, step_gradients(options, DType::Float32, scale_network(models::Network::Discriminator, 2)),
          kStepTolerance);
      INFO(listing(failures));
      for (const auto& [name, gradient] : correct.gradients) {
        INFO(name);
        if (name.rfind("D.", 0) == 0 && !cancelled(correct, name)) CHECK(failures.count(name) == 1);
      }
    }
    SECTION("one gradient 0.1% too large") {
      const auto failures = mismatched_gradients(
          correct,
          step_gradients(options, DType::Float32,
                         change_gradient("D.layer1.weight", [](const Tensor& g) { return mul(g, 1.001); })),
          kStepTolerance);
      INFO(listing(failures));
      CHECK(failures.count("D.layer1.weight") == 1);
    }
  }
}

namespace {

// Five optimiser steps from the same parameters with the same fresh
// gradients each step; returns the parameters and the optimiser state.
template <typename Optimizer, typename Options>
std::map<std::string, Tensor> optimiser_run(const Options& options, DType dtype, double gradient_sign = 1) {
  const std::vector<Shape> shapes{{7}, {3, 5, 7, 11}, {10007}};
  std::vector<Tensor> parameters;
  for (size_t i = 0; i < shapes.size(); ++i)
    parameters.push_back(testing::random_tensor(shapes[i], 7000 + i, DType::Float32).to(dtype).set_requires_grad());
  Optimizer optimizer(parameters, options);
  for (int step = 1; step <= 5; ++step) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      const double scale = step % 2 == 0 ? 1e-3 : 1.0;  // eps matters for some elements
      const Tensor grad = testing::random_tensor(shapes[i], 7100 + 10 * static_cast<uint64_t>(step) + i,
                                                 DType::Float32, -scale, scale);
      parameters[i].set_grad(mul(grad.to(dtype), gradient_sign));
    }
    optimizer.step();
  }
  std::map<std::string, Tensor> result = optimizer.state_dict("opt.");
  for (size_t i = 0; i < parameters.size(); ++i) result["param." + std::to_string(i)] = parameters[i].detach();
  return result;
}

// The entries that fail `tolerance`, with the comparisons' descriptions.
std::map<std::string, std::string> mismatched(const std::map<std::string, Tensor>& actual,
                                              const std::map<std::string, Tensor>& expected,
                                              const Tolerance& tolerance) {
  std::map<std::string, std::string> failures;
  for (const auto& [name, reference] : expected) {
    const Comparison comparison = compare(actual.at(name), reference, tolerance);
    if (!comparison.passed()) failures[name] = comparison.describe();
  }
  return failures;
}

optim::AdamOptions adam_options() {
  // eps large enough that its placement shows
  return optim::AdamOptions(0.01).beta1(0.5).beta2(0.999).eps(1e-3).weight_decay(0.1);
}

}  // namespace

TEST_CASE("the optimiser check passes float32 against float64 and fails a wrong sign, term or epsilon placement",
          "[compare][optim]") {
  const optim::AdamOptions options = adam_options();
  const auto correct = optimiser_run<optim::Adam>(options, DType::Float32);
  {
    const auto failures =
        mismatched(correct, optimiser_run<optim::Adam>(options, DType::Float64), kOptimizerTolerance.scaled(0.25));
    INFO("float32 against float64:" << listing(failures));
    CHECK(failures.empty());
  }
  {
    INFO("gradients with their sign flipped");
    const auto failures = mismatched(correct, optimiser_run<optim::Adam>(options, DType::Float32, -1),
                                     kOptimizerTolerance);
    for (const char* name : {"param.0", "param.1", "param.2", "opt.0.exp_avg", "opt.2.exp_avg"}) {
      INFO(name << listing(failures));
      CHECK(failures.count(name) == 1);
    }
  }
  {
    INFO("weight decay dropped");
    optim::AdamOptions mutated = options;
    mutated.weight_decay(0);
    CHECK(mismatched(correct, optimiser_run<optim::Adam>(mutated, DType::Float32), kOptimizerTolerance).count(
              "param.2") == 1);
  }
  {
    INFO("the learning rate 1% off");
    optim::AdamOptions mutated = options;
    mutated.lr(mutated.lr() * 1.01);
    CHECK(mismatched(correct, optimiser_run<optim::Adam>(mutated, DType::Float32), kOptimizerTolerance).count(
              "param.2") == 1);
  }
  {
    INFO("epsilon placed as Chainer places it");
    optim::AdamOptions mutated = options;
    mutated.placement(optim::EpsilonPlacement::Chainer);
    CHECK(mismatched(correct, optimiser_run<optim::Adam>(mutated, DType::Float32), kOptimizerTolerance).count(
              "param.2") == 1);
  }
  {
    INFO("SGD: momentum dropped");
    const auto sgd = optimiser_run<optim::SGD>(optim::SGDOptions(0.05).momentum(0.9).weight_decay(0.01), DType::Float32);
    CHECK(mismatched(sgd, optimiser_run<optim::SGD>(optim::SGDOptions(0.05).momentum(0.9).weight_decay(0.01), DType::Float64),
                     kOptimizerTolerance.scaled(0.25))
              .empty());
    CHECK(mismatched(sgd, optimiser_run<optim::SGD>(optim::SGDOptions(0.05).momentum(0.0).weight_decay(0.01), DType::Float32),
                     kOptimizerTolerance)
              .count("param.2") == 1);
  }
}

TEST_CASE("the before-update hook sees each network's gradients before its update, in the preset's order",
          "[pix2pix][hook]") {
  for (const models::Preset preset : {models::Preset::Paper, models::Preset::Chainer}) {
    INFO(preset_name(preset) << " preset");
    manual_seed(21);
    models::Pix2Pix model(small_step_options(preset, /*lr=*/2e-4));
    const Tensor input = testing::random_tensor({2, 3, 32, 32}, 8001, DType::Float32);
    const Tensor target = testing::random_tensor({2, 3, 32, 32}, 8002, DType::Float32);
    std::map<std::string, Tensor> before;
    for (const auto& [name, tensor] : model.state_dict()) before[name] = tensor.clone();

    std::vector<models::Network> order;
    model.set_before_update([&](models::Network network, nn::Module& module) {
      order.push_back(network);
      const std::string prefix = network == models::Network::Generator ? "G." : "D.";
      for (const auto& [name, parameter] : module.named_parameters()) {
        INFO(prefix << name);
        REQUIRE(parameter.grad().defined());
        // Not updated yet: the parameter still holds its value from before the step.
        CHECK(compare(parameter, before.at(prefix + name), {}).passed());
      }
    });
    model.train_step(input, target);
    model.set_before_update({});

    const std::vector<models::Network> expected =
        preset == models::Preset::Paper
            ? std::vector<models::Network>{models::Network::Discriminator, models::Network::Generator}
            : std::vector<models::Network>{models::Network::Generator, models::Network::Discriminator};
    CHECK(order == expected);
    // And after the step every network has moved.
    const std::map<std::string, Tensor> after = model.state_dict();
    for (const char* name : {"G.down1.weight", "D.layer1.weight"}) {
      INFO(name);
      CHECK_FALSE(compare(after.at(name), before.at(name), {}).passed());
    }
  }
}

TEST_CASE("a before-update hook may remove itself while it runs", "[pix2pix][hook]") {
  manual_seed(21);
  models::Pix2Pix model(small_step_options(models::Preset::Paper, /*lr=*/2e-4));
  int calls = 0;
  model.set_before_update([&](models::Network, nn::Module&) {
    ++calls;
    model.set_before_update({});  // destroys the function object that is running
  });
  model.train_step(testing::random_tensor({1, 3, 32, 32}, 1, DType::Float32),
                   testing::random_tensor({1, 3, 32, 32}, 2, DType::Float32));
  CHECK(calls == 1);
}
