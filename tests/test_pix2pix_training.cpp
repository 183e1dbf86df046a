// Real, small training runs on CPU: both presets overfit a handful of facade
// pairs; a resumed run equals an uninterrupted one bit for bit; bad
// checkpoints and output folders fail cleanly.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <pixgrad/core/generator.h>
#include <pixgrad/core/safetensors.h>
#include <pixgrad/data/datasets.h>
#include <pixgrad/models/pix2pix.h>
#include <pixgrad/training/checkpoint.h>
#include <pixgrad/training/run_log.h>
#include <pixgrad/training/trainer.h>
#include "test_paths.h"
#include "tiny_run.h"

using namespace pixgrad;
using Catch::Matchers::Contains;

namespace {

const std::string kFacades = testing::shared_data_root() + "/facades";

bool have_data() { return testing::have_shared_data(kFacades); }

}  // namespace

TEST_CASE("both presets overfit a few pairs: losses finite, L1 falls", "[training]") {
  if (!have_data()) return;
  for (const models::Preset preset : {models::Preset::Paper, models::Preset::Chainer}) {
    SECTION(models::to_string(preset)) {
      data::AlignedOptions data_options;
      data_options.direction = data::Direction::BtoA;
      data_options.load_size = 32;
      data_options.crop_size = 32;
      data_options.no_flip = true;
      const data::AlignedDataset dataset(kFacades, "train", data_options);
      std::vector<data::Example> pairs;
      for (size_t i = 0; i < 4; ++i) pairs.push_back(dataset.get(i, 0));

      manual_seed(3);
      models::Pix2PixOptions options = models::Pix2PixOptions::for_preset(preset, 3, 3);
      options.generator.ngf = 8;
      options.generator.num_downs = preset == models::Preset::Paper ? 5 : 4;
      options.discriminator.ndf = 8;
      options.adam.lr(1e-3);
      models::Pix2Pix model(options);
      std::vector<double> l1;
      for (int step = 0; step < 60; ++step) {
        const data::Example& pair = pairs[static_cast<size_t>(step) % pairs.size()];
        const models::StepLosses losses =
            model.train_step(pair.input.reshape({1, 3, 32, 32}), pair.target.reshape({1, 3, 32, 32}));
        for (double v : {losses.g_total, losses.g_adv, losses.g_l1, losses.d_total, losses.d_real, losses.d_fake})
          REQUIRE(std::isfinite(v));
        l1.push_back(losses.g_l1);
      }
      const double first = (l1[0] + l1[1] + l1[2] + l1[3]) / 4;
      const double last = (l1[56] + l1[57] + l1[58] + l1[59]) / 4;
      INFO("mean L1 over the first 4 steps " << first << ", over the last 4 " << last);
      CHECK(last < 0.7 * first);
    }
  }
}

TEST_CASE("a resumed run equals an uninterrupted one, bit for bit", "[training][resume]") {
  if (!have_data()) return;
  for (const std::string preset : {"paper", "chainer"}) {
    SECTION(preset) {
      const auto straight_dir = testing::fresh_folder("straight_" + preset), split_dir = testing::fresh_folder("split_" + preset);
      training::TrainConfig straight = testing::tiny_config(preset, straight_dir);
      straight.max_iterations = 7;
      training::Trainer(straight).run();

      training::TrainConfig first = testing::tiny_config(preset, split_dir);
      first.max_iterations = 4;
      CHECK(training::Trainer(first).run().iterations == 4);
      training::TrainConfig rest = first;
      rest.max_iterations = 7;
      const std::string checkpoint = (split_dir / "checkpoint.safetensors").string();
      CHECK(training::Trainer(rest, checkpoint, {"max_iterations"}).run().iterations == 7);

      const training::Checkpoint a = training::load_checkpoint((straight_dir / "checkpoint.safetensors").string());
      const training::Checkpoint b = training::load_checkpoint(checkpoint);
      CHECK(a.state.iteration == 7);
      CHECK(b.state.iteration == 7);
      CHECK(a.state.rng_offset == b.state.rng_offset);
      REQUIRE(a.tensors.size() == b.tensors.size());
      for (const auto& [name, tensor] : a.tensors) {
        INFO(name);
        REQUIRE(b.tensors.count(name) == 1);
        CHECK(tensor.to_vector() == b.tensors.at(name).to_vector());
      }
      // The log reads as one run: iterations 1..7 once each.
      const training::RunLog log((split_dir / "log.jsonl").string());
      std::vector<int64_t> iterations;
      for (const auto& record : log.training_records()) iterations.push_back(record["iteration"].get<int64_t>());
      CHECK(iterations == std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7});
      std::filesystem::remove_all(straight_dir);
      std::filesystem::remove_all(split_dir);
    }
  }
}

TEST_CASE("the lsgan and wgangp objectives train, and a resumed run keeps its objective", "[training][gan]") {
  if (!have_data()) return;
  for (const std::string mode : {"lsgan", "wgangp"}) {
    SECTION(mode) {
      const auto folder = testing::fresh_folder("gan_mode_" + mode);
      training::TrainConfig config = testing::tiny_config("paper", folder);
      config.gan_mode = mode;
      config.max_iterations = 3;
      CHECK(training::Trainer(config).run().iterations == 3);
      const std::string checkpoint = (folder / "checkpoint.safetensors").string();
      CHECK(training::load_checkpoint(checkpoint).config.gan_mode == mode);
      const training::RunLog log((folder / "log.jsonl").string());
      REQUIRE(log.training_records().size() == 3);
      for (const auto& record : log.training_records()) {
        const double real = record.at("loss_D_real").get<double>(), fake = record.at("loss_D_fake").get<double>();
        CHECK(std::isfinite(real));
        CHECK(std::isfinite(fake));
        // Squared errors cannot go below zero; the Wasserstein terms can.
        if (mode == "lsgan") CHECK((real >= 0 && fake >= 0));
      }
      training::TrainConfig other = config;
      other.gan_mode = "vanilla";
      CHECK_THROWS_WITH(training::Trainer(other, checkpoint, {"gan_mode"}),
                        Contains("--gan-mode") && Contains("vanilla") && Contains(mode));
      std::filesystem::remove_all(folder);
    }
  }
  training::TrainConfig unknown = testing::tiny_config("paper", testing::fresh_folder("gan_mode_unknown"));
  unknown.gan_mode = "wgan";
  CHECK_THROWS_WITH(training::Trainer(unknown), Contains("'wgan'") && Contains("wgangp"));
}

TEST_CASE("bad checkpoints and output folders give one-line errors", "[training][errors]") {
  if (!have_data()) return;
  const auto folder = testing::fresh_folder("bad_checkpoint");
  training::TrainConfig config = testing::tiny_config("paper", folder);
  config.max_iterations = 1;
  training::Trainer(config).run();
  const std::string checkpoint = (folder / "checkpoint.safetensors").string();

  SECTION("another preset") {
    training::TrainConfig other = config;
    other.preset = "chainer";
    CHECK_THROWS_WITH(training::Trainer(other, checkpoint, {"preset"}),
                      Contains(checkpoint) && Contains("--preset") && Contains("chainer"));
  }
  SECTION("truncated") {
    const std::string truncated = (folder / "truncated.safetensors").string();
    std::filesystem::copy_file(checkpoint, truncated);
    std::filesystem::resize_file(truncated, std::filesystem::file_size(checkpoint) / 2);
    CHECK_THROWS_WITH(training::load_checkpoint(truncated), Contains(truncated));
  }
  SECTION("not a checkpoint") {
    const std::string plain = (folder / "plain.safetensors").string();
    safetensors::save(plain, {{"x", Tensor::zeros({2})}});
    CHECK_THROWS_WITH(training::load_checkpoint(plain), Contains(plain) && Contains("not a pixgrad"));
  }
  SECTION("unwritable output folder") {
    training::TrainConfig unwritable = config;
    unwritable.output = "/proc/pixgrad_cannot_write_here";
    CHECK_THROWS_WITH(training::Trainer(unwritable), Contains("/proc/pixgrad_cannot_write_here"));
  }
  SECTION("earlier outputs stay intact after a failed run") {
    const auto size_before = std::filesystem::file_size(checkpoint);
    training::TrainConfig broken = config;
    broken.dataset = (folder / "missing").string();
    CHECK_THROWS(training::Trainer(broken, checkpoint, {"dataset"}));
    CHECK(std::filesystem::file_size(checkpoint) == size_before);
    CHECK_NOTHROW(training::load_checkpoint(checkpoint));
  }
  std::filesystem::remove_all(folder);
}
