// A pix2pix training step's parameter gradients, read just before each
// optimiser update, and their comparison with a reference step's. Shared by
// the CUDA suite (CUDA step against CPU step) and the CPU suite, which shows
// that the comparison passes float32 against float64 and fails a reference
// with a flipped sign, a dropped term or a wrong scale. Header-only.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "compare.h"
#include <pixgrad/models/pix2pix.h>

namespace pixgrad::testing {

// Small versions of the presets: 32x32 images down to 1x1 (paper) or 2x2
// (chainer, whose innermost level is normalised), as in the training tests.
// With lr 0 the optimisers change nothing, so the paper preset's G step sees
// the same D on every device: gradients are compared without the optimiser,
// which has tests of its own.
inline models::Pix2PixOptions small_step_options(models::Preset preset, double lr = 0) {
  models::Pix2PixOptions options = models::Pix2PixOptions::for_preset(preset, 3, 3);
  options.generator.ngf = 8;
  options.generator.num_downs = preset == models::Preset::Paper ? 5 : 4;
  options.discriminator.ndf = 8;
  options.adam.lr(lr);
  return options;
}

struct StepGradients {
  std::map<std::string, Tensor> gradients;  // "G.<parameter>", "D.<parameter>", on the CPU
  models::StepLosses losses;
};

// A change made to the gradients of `network` before they are read (the
// mutation tests inject bugs this way); may be empty.
using GradientMutation = std::function<void(models::Network network, nn::Module& module)>;

// Runs one train_step and returns every parameter gradient as the optimiser
// was about to see it.
// Removes a model's before-update hook when it goes, also when a check throws.
class HookRemover {
 public:
  explicit HookRemover(models::Pix2Pix& model) : model_(model) {}
  ~HookRemover() { model_.set_before_update({}); }
  HookRemover(const HookRemover&) = delete;
  HookRemover& operator=(const HookRemover&) = delete;

 private:
  models::Pix2Pix& model_;
};

inline StepGradients capture_step(models::Pix2Pix& model, const Tensor& input, const Tensor& target,
                                  const GradientMutation& mutate = {}) {
  StepGradients result;
  const HookRemover remover(model);
  model.set_before_update([&](models::Network network, nn::Module& module) {
    if (mutate) mutate(network, module);
    const std::string prefix = network == models::Network::Generator ? "G." : "D.";
    for (const auto& [name, parameter] : module.named_parameters()) {
      INFO(prefix << name);
      REQUIRE(parameter.grad().defined());
      result.gradients[prefix + name] = parameter.grad().to(Device::cpu()).clone();
    }
  });
  result.losses = model.train_step(input, target);
  return result;
}

// Gradients that are zero in exact arithmetic (in the chainer preset, a conv
// bias feeding batch norm: the norm subtracts the batch mean, bias included)
// come out as float rounding noise, up to ~3e-7 of the network's largest
// gradient RMS (measured against float64). They get an absolute floor of
// 4e-6 of that RMS; the smallest real gradients are ~1e-3 of it.
inline constexpr double kCancelledGradientFloor = 4e-6;

// Each network's largest gradient RMS, keyed "G." / "D.".
inline std::map<std::string, double> network_scales(const std::map<std::string, Tensor>& gradients) {
  std::map<std::string, double> scales;
  for (const auto& [name, gradient] : gradients) {
    double& scale = scales[name.substr(0, 2)];
    scale = std::max(scale, rms(gradient.to_double_vector()));
  }
  return scales;
}

// The names whose gradients fail `tolerance` (plus the cancelled-gradient
// floor), each with the comparison's description; empty when all pass.
inline std::map<std::string, std::string> mismatched_gradients(const StepGradients& actual,
                                                               const StepGradients& expected,
                                                               const Tolerance& tolerance) {
  std::map<std::string, std::string> failures;
  const std::map<std::string, double> scales = network_scales(expected.gradients);
  for (const auto& [name, reference] : expected.gradients) {
    const auto found = actual.gradients.find(name);
    if (found == actual.gradients.end()) {
      failures[name] = "missing";
      continue;
    }
    const Tolerance own = tolerance.plus_absolute(kCancelledGradientFloor * scales.at(name.substr(0, 2)));
    const Comparison comparison = compare(found->second, reference, own);
    if (!comparison.passed()) failures[name] = comparison.describe();
  }
  for (const auto& [name, gradient] : actual.gradients)
    if (!expected.gradients.count(name)) failures[name] = "not in the reference";
  return failures;
}

// The six losses of the two steps, as one comparison, each held to its own
// magnitude (their RMS would be G's 100 x L1 and excuse the others).
inline Comparison compare_losses(const models::StepLosses& actual, const models::StepLosses& expected,
                                 const Tolerance& tolerance) {
  const auto values = [](const models::StepLosses& l) {
    return std::vector<double>{l.g_total, l.g_adv, l.g_l1, l.d_total, l.d_real, l.d_fake};
  };
  return compare(values(actual), values(expected), Tolerance{tolerance.relative, 0, tolerance.absolute});
}

}  // namespace pixgrad::testing
