// Small, fast training runs on the real facades for the training tests.
#pragma once

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>

#include <pixgrad/core/ops.h>
#include <pixgrad/training/train_config.h>
#include <pixgrad/training/trainer.h>
#include "test_paths.h"

namespace pixgrad::testing {

inline std::string facades_root() { return shared_data_root() + "/facades"; }

// An empty folder for a test's run (what an earlier run of the test left is removed).
inline std::filesystem::path fresh_folder(const std::string& name) {
  const auto folder = std::filesystem::temp_directory_path() / ("pixgrad_test_" + name);
  std::filesystem::remove_all(folder);
  return folder;
}

// A model small enough to train in seconds: 32x32 crops, down to 1x1 (paper,
// whose innermost level has no norm) or 2x2 (chainer, which normalises it).
inline training::TrainConfig tiny_config(const std::string& preset, const std::filesystem::path& output,
                                         const std::string& dataset = facades_root()) {
  training::TrainConfig config;
  config.dataset = dataset;
  config.direction = "BtoA";
  config.preset = preset;
  config.load_size = 36;
  config.crop_size = 32;
  config.ngf = 8;
  config.ndf = 8;
  config.num_downs = preset == "paper" ? 5 : 4;
  config.workers = 1;
  config.output = output.string();
  config.log_interval = 1;
  config.snapshot_interval = 1000;
  config.preview_count = 2;
  config.seed = 7;
  return config;
}

// Makes step `step`'s generator gradient NaN (its first parameter's, as the
// optimiser receives it): a step that diverges.
inline void spoil_generator_step(training::Trainer& trainer, int step) {
  auto updates = std::make_shared<int>(0);
  trainer.model().set_before_update([updates, step](models::Network network, nn::Module& module) {
    if (network != models::Network::Generator || ++*updates != step) return;
    Tensor grad = module.named_parameters().front().second.grad();
    fill_(grad, std::nan(""));
  });
}

}  // namespace pixgrad::testing
