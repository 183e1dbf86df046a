// The check that a replayed training step (models/graphed_step.h) is the
// eager step: the same small pix2pix model trained on the same batches,
// eagerly and through GraphedTrainStep, must give the same losses at every
// step and the same parameters, optimiser state, running statistics and
// generator position at the end, bit for bit. Shared by the CPU suite (the
// stand-in) and the CUDA suite (a CUDA graph).
#pragma once

#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <pixgrad/core/generator.h>
#include <pixgrad/models/graphed_step.h>
#include <pixgrad/models/pix2pix.h>

namespace pixgrad::testing {

struct ReplayRun {
  std::vector<models::StepLosses> losses;      // one per step, in order
  std::map<std::string, Tensor> state;         // the model's state_dict at the end, on the host
  uint64_t generator_seed = 0, generator_offset = 0;
};

// A small model of `preset` (dropout in the decoder, batch norm) on `device`.
inline models::Pix2PixOptions small_replay_options(models::Preset preset) {
  models::Pix2PixOptions options = models::Pix2PixOptions::for_preset(preset, 3, 3);
  options.generator.ngf = 8;
  // Inputs of 64x64. Paper: dropout from level 4 to num_downs - 2; chainer:
  // batch norm at its innermost level too, which must not be 1x1.
  options.generator.num_downs = preset == models::Preset::Paper ? 6 : 5;
  options.discriminator.ndf = 8;
  return options;
}

// The batches: `shapes[i]` for step i, drawn from a private generator.
inline std::vector<std::pair<Tensor, Tensor>> replay_batches(const std::vector<Shape>& shapes) {
  Generator draw(2024);
  std::vector<std::pair<Tensor, Tensor>> batches;
  for (const Shape& shape : shapes)
    batches.emplace_back(Tensor::uniform(shape, -1, 1, draw), Tensor::uniform(shape, -1, 1, draw));
  return batches;
}

// Trains a fresh model (seed 5) on `batches`; graphed or eager. `lr_at`
// gives each step's learning rate (set before the step), as a schedule would;
// `before_step(i, model)`, if given, runs before step i.
// A model of `options` rather than the small one of a preset.
inline ReplayRun run_replay_case(const models::Pix2PixOptions& options, Device device, bool graphed,
                                 const std::vector<std::pair<Tensor, Tensor>>& batches,
                                 const std::vector<double>& lr_at,
                                 const std::function<void(size_t, models::Pix2Pix&)>& before_step = {}) {
  manual_seed(5);
  models::Pix2Pix model(options);
  model.to(device);
  ReplayRun run;
  std::optional<models::GraphedTrainStep> replayed;
  if (graphed) replayed.emplace(model);
  for (size_t i = 0; i < batches.size(); ++i) {
    model.set_learning_rate(lr_at[i]);
    if (before_step) before_step(i, model);
    if (!graphed) {
      run.losses.push_back(model.train_step(batches[i].first.to(device), batches[i].second.to(device)));
      continue;
    }
    const std::optional<models::StepLosses> previous = replayed->step(batches[i].first, batches[i].second);
    REQUIRE(previous.has_value() == (i > 0));  // one step late
    if (previous) run.losses.push_back(*previous);
  }
  if (graphed) {
    const std::optional<models::StepLosses> last = replayed->finish();
    REQUIRE(last.has_value());
    run.losses.push_back(*last);
    CHECK_FALSE(replayed->finish().has_value());
    CHECK(replayed->captured() == (batches.size() >= 2));
  }
  for (const auto& [name, tensor] : model.state_dict()) run.state[name] = tensor.to(Device::cpu());
  run.generator_seed = default_generator().seed();
  run.generator_offset = default_generator().offset();
  return run;
}

inline ReplayRun run_replay_case(models::Preset preset, Device device, bool graphed,
                                 const std::vector<std::pair<Tensor, Tensor>>& batches,
                                 const std::vector<double>& lr_at,
                                 const std::function<void(size_t, models::Pix2Pix&)>& before_step = {}) {
  return run_replay_case(small_replay_options(preset), device, graphed, batches, lr_at, before_step);
}

inline bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Every loss, every state tensor element and the generator, bit for bit.
inline void require_same_runs(const ReplayRun& eager, const ReplayRun& graphed) {
  REQUIRE(eager.losses.size() == graphed.losses.size());
  for (size_t i = 0; i < eager.losses.size(); ++i) {
    const models::StepLosses &e = eager.losses[i], &g = graphed.losses[i];
    INFO("step " << i + 1 << ": eager loss_G " << e.g_total << " loss_D " << e.d_total << ", replayed loss_G "
                 << g.g_total << " loss_D " << g.d_total);
    CHECK(same_bits(e.g_total, g.g_total));
    CHECK(same_bits(e.g_adv, g.g_adv));
    CHECK(same_bits(e.g_l1, g.g_l1));
    CHECK(same_bits(e.d_total, g.d_total));
    CHECK(same_bits(e.d_real, g.d_real));
    CHECK(same_bits(e.d_fake, g.d_fake));
    CHECK(e.g_gradients_finite == g.g_gradients_finite);
    CHECK(e.d_gradients_finite == g.d_gradients_finite);
  }
  REQUIRE(eager.state.size() == graphed.state.size());
  int differing = 0;
  std::string first;
  for (const auto& [name, tensor] : eager.state) {
    const auto other = graphed.state.find(name);
    REQUIRE(other != graphed.state.end());
    const std::vector<double> a = tensor.to_double_vector(), b = other->second.to_double_vector();
    REQUIRE(a.size() == b.size());
    for (size_t k = 0; k < a.size(); ++k)
      if (!same_bits(a[k], b[k]) && differing++ == 0) first = name + "[" + std::to_string(k) + "]";
  }
  INFO("first differing state element: " << first);
  CHECK(differing == 0);
  CHECK(eager.generator_seed == graphed.generator_seed);
  CHECK(eager.generator_offset == graphed.generator_offset);
}

}  // namespace pixgrad::testing
