// The captured training step on the CPU: the stand-in for a CUDA graph
// (models/graphed_step.h) replays the step with the host state its capture
// began from, so these tests fail if anything that must change between
// replays (dropout offsets, Adam's scalars, the batch) is baked in; and what
// a capture cannot hold is refused with a clear error.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <pixgrad/core/ops.h>
#include <pixgrad/core/replay_values.h>
#include <pixgrad/optim/optimizer.h>
#include <pixgrad/training/checkpoint.h>
#include <pixgrad/training/trainer.h>
#include "graph_replay_case.h"
#include "test_paths.h"
#include "tiny_run.h"

using namespace pixgrad;
using Catch::Matchers::Contains;

namespace {

const Shape kBatch{1, 3, 64, 64};

// The loss records of a run's log.jsonl, without their timings.
std::vector<nlohmann::json> logged_losses(const std::filesystem::path& log) {
  std::vector<nlohmann::json> records;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    nlohmann::json record = nlohmann::json::parse(line);
    if (!record.contains("loss_G")) continue;
    record.erase("seconds_per_iteration");
    records.push_back(record);
  }
  return records;
}

// The details of a run log's "diverged" events.
std::vector<std::string> diverged_details(const std::filesystem::path& log) {
  std::vector<std::string> details;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json record = nlohmann::json::parse(line);
    if (record.value("event", "") == "diverged") details.push_back(record.value("detail", ""));
  }
  return details;
}

}  // namespace

TEST_CASE("replayed training steps equal eager ones bit for bit, both presets", "[graph][slow]") {
  for (const models::Preset preset : {models::Preset::Paper, models::Preset::Chainer}) {
    SECTION(models::to_string(preset)) {
      // Five steps: an eager warm-up, the capture, three replays; the
      // learning rate changes before the last two, as a schedule's would.
      const auto batches = testing::replay_batches({kBatch, kBatch, kBatch, kBatch, kBatch});
      const std::vector<double> lr{2e-4, 2e-4, 2e-4, 1e-4, 5e-5};
      const testing::ReplayRun eager = testing::run_replay_case(preset, Device::cpu(), false, batches, lr);
      const testing::ReplayRun graphed = testing::run_replay_case(preset, Device::cpu(), true, batches, lr);
      testing::require_same_runs(eager, graphed);
      // The dropout draws moved the generator: the offsets were not all the same.
      CHECK(eager.generator_offset > 0);
    }
  }
}

TEST_CASE("a batch of another shape between replays runs eagerly and changes nothing else", "[graph][slow]") {
  const Shape wide{1, 3, 64, 128};
  const auto batches = testing::replay_batches({kBatch, kBatch, wide, kBatch, kBatch});
  const std::vector<double> lr(5, 2e-4);
  const testing::ReplayRun eager = testing::run_replay_case(models::Preset::Paper, Device::cpu(), false, batches, lr);
  const testing::ReplayRun graphed = testing::run_replay_case(models::Preset::Paper, Device::cpu(), true, batches, lr);
  testing::require_same_runs(eager, graphed);
}

TEST_CASE("a parameter frozen after the capture, or a second step of another shape, runs eagerly", "[graph]") {
  const std::vector<double> lr(6, 2e-4);
  SECTION("frozen, then trained again") {
    const auto batches = testing::replay_batches({kBatch, kBatch, kBatch, kBatch, kBatch, kBatch});
    const auto freeze = [](size_t i, models::Pix2Pix& model) {
      if (i == 3 || i == 5) model.generator().parameters().front().set_requires_grad(i == 5);
    };
    testing::require_same_runs(
        testing::run_replay_case(models::Preset::Paper, Device::cpu(), false, batches, lr, freeze),
        testing::run_replay_case(models::Preset::Paper, Device::cpu(), true, batches, lr, freeze));
  }
  SECTION("the capture waits for a step warmed up at its shapes") {
    const auto batches = testing::replay_batches({kBatch, {1, 3, 64, 128}, {1, 3, 64, 128}, kBatch, kBatch, kBatch});
    testing::require_same_runs(testing::run_replay_case(models::Preset::Paper, Device::cpu(), false, batches, lr),
                               testing::run_replay_case(models::Preset::Paper, Device::cpu(), true, batches, lr));
  }
}

TEST_CASE("a replay refused after a re-seed keeps the previous step's losses", "[graph]") {
  manual_seed(5);
  models::Pix2Pix model(testing::small_replay_options(models::Preset::Paper));
  models::GraphedTrainStep graphed(model);
  const auto batches = testing::replay_batches({kBatch, kBatch, kBatch, kBatch});
  for (size_t i = 0; i < 3; ++i) (void)graphed.step(batches[i].first, batches[i].second);
  manual_seed(6);
  CHECK_THROWS_WITH(graphed.step(batches[3].first, batches[3].second),
                    Contains("seeded again") && Contains("new GraphedTrainStep"));
  const std::optional<models::StepLosses> third = graphed.finish();
  REQUIRE(third.has_value());
  CHECK(third->finite());
}

TEST_CASE("train_pix2pix --cuda-graph trains what a run without it trains, bit for bit", "[graph][training]") {
  if (!testing::have_shared_data(testing::facades_root())) return;
  for (const std::string preset : {"paper", "chainer"}) {
    SECTION(preset) {
      std::map<std::string, training::Checkpoint> runs;
      std::map<std::string, std::vector<nlohmann::json>> logs;
      for (const bool graph : {false, true}) {
        const auto folder = testing::fresh_folder("cuda_graph_" + preset + (graph ? "_on" : "_off"));
        training::TrainConfig config = testing::tiny_config(preset, folder);
        config.cuda_graph = graph;
        config.max_iterations = 7;
        // Losses logged every 3 steps, a snapshot at 4: under --cuda-graph
        // steps 1, 2 and 5 have their losses read one step late, the others
        // at once; the means logged must be the same.
        config.log_interval = 3;
        config.snapshot_interval = 4;
        CHECK(training::Trainer(config).run().iterations == 7);
        runs[graph ? "on" : "off"] = training::load_checkpoint((folder / "checkpoint.safetensors").string());
        logs[graph ? "on" : "off"] = logged_losses(folder / "log.jsonl");
        std::filesystem::remove_all(folder);
      }
      // At 3, 6 and the end (7).
      REQUIRE(logs.at("off").size() == 3);
      CHECK(logs.at("on") == logs.at("off"));
      const training::Checkpoint &off = runs.at("off"), &on = runs.at("on");
      CHECK(on.config.cuda_graph);
      CHECK(off.state.rng_offset == on.state.rng_offset);
      REQUIRE(off.tensors.size() == on.tensors.size());
      for (const auto& [name, tensor] : off.tensors) {
        INFO(name);
        REQUIRE(on.tensors.count(name) == 1);
        CHECK(tensor.to_vector() == on.tensors.at(name).to_vector());
      }
    }
  }
}

// A step whose losses come one step late still stops the run: the next
// step has run by then, so the state written aside is after it, and the
// message says which step went bad.
TEST_CASE("train_pix2pix --cuda-graph stops at a diverged step read one step late", "[graph][nan]") {
  if (!testing::have_shared_data(testing::facades_root())) return;
  const auto folder = testing::fresh_folder("cuda_graph_diverged");
  training::TrainConfig config = testing::tiny_config("paper", folder);
  config.cuda_graph = true;
  config.max_iterations = 8;
  config.log_interval = 100;
  config.snapshot_interval = 2;  // steps 2, 4, ... are read at once, 1, 3, ... one step late
  {
    training::Trainer trainer(config);
    // The hook keeps the steps eager (a capture cannot call one), but the
    // graphed step still hands their losses back one step late.
    testing::spoil_generator_step(trainer, 3);
    const training::RunSummary summary = trainer.run();
    CHECK(summary.diverged);
    CHECK(summary.iterations == 4);
  }
  CHECK(training::load_checkpoint((folder / "checkpoint.safetensors").string()).state.iteration == 2);
  CHECK(training::load_checkpoint((folder / "checkpoint.diverged.safetensors").string()).state.iteration == 4);
  const std::vector<std::string> details = diverged_details(folder / "log.jsonl");
  REQUIRE(details.size() == 1);
  CHECK_THAT(details[0], Contains("G's gradients") && Contains("at iteration 3, whose losses came one step late") &&
                             Contains("after iteration 4"));
  std::filesystem::remove_all(folder);
}

// An error between two steps (a damaged image) while a step's losses are
// still to come: the step is checked before anything is saved, so a
// diverged one ends the run as without --cuda-graph (where its losses were
// seen before the damaged image was read), never saved as good.
TEST_CASE("train_pix2pix --cuda-graph checks a pending step before saving after a data error", "[graph][nan]") {
  if (!testing::have_shared_data(testing::facades_root())) return;
  const auto dataset = testing::fresh_folder("cuda_graph_damaged_data");
  for (const char* split : {"train", "test"}) std::filesystem::create_directories(dataset / split);
  std::filesystem::create_symlink(std::filesystem::absolute(testing::facades_root() + "/train/1.jpg"),
                                  dataset / "train" / "1.jpg");
  std::ofstream(dataset / "train" / "2.jpg") << "not an image";
  std::filesystem::create_symlink(std::filesystem::absolute(testing::facades_root() + "/test/1.jpg"),
                                  dataset / "test" / "1.jpg");
  const auto folder = testing::fresh_folder("cuda_graph_damaged_run");
  training::TrainConfig config = testing::tiny_config("paper", folder, dataset.string());
  config.cuda_graph = true;
  config.log_interval = config.snapshot_interval = 100;
  config.seed = 1;  // the good image first: one step runs before the damaged one is read
  {
    training::Trainer trainer(config);
    testing::spoil_generator_step(trainer, 1);
    const training::RunSummary summary = trainer.run();
    CHECK(summary.diverged);
    CHECK(summary.iterations == 1);
  }
  CHECK_FALSE(std::filesystem::exists(folder / "checkpoint.safetensors"));
  REQUIRE(std::filesystem::exists(folder / "checkpoint.diverged.safetensors"));
  CHECK(training::load_checkpoint((folder / "checkpoint.diverged.safetensors").string()).state.iteration == 1);
  const std::vector<std::string> details = diverged_details(folder / "log.jsonl");
  REQUIRE(details.size() == 1);
  CHECK_THAT(details[0], Contains("G's gradients"));
  std::filesystem::remove_all(folder);
  std::filesystem::remove_all(dataset);
}

TEST_CASE("train_pix2pix refuses --cuda-graph for data-parallel runs", "[graph]") {
  training::TrainConfig config = testing::tiny_config("paper", testing::fresh_folder("cuda_graph_dp"));
  config.cuda_graph = true;
  config.world_size = 2;
  CHECK_THROWS_WITH(training::validate(config), Contains("--cuda-graph") && Contains("data-parallel"));
}

TEST_CASE("a captured step refuses what a graph cannot hold", "[graph]") {
  CaptureSession session(Device::cpu());
  const CaptureSession::Scope scope(session);
  const Tensor x = Tensor::full({1}, 1.5);
  SECTION("reading values on the host") {
    CHECK_THROWS_WITH((void)x.item(), Contains("captured step") && Contains("replayed"));
    CHECK_THROWS_WITH((void)x.to_double_vector(), Contains("captured step"));
  }
  SECTION("random fills, whose numbers would repeat") {
    Generator generator(1);
    CHECK_THROWS_WITH((void)Tensor::uniform({4}, 0, 1, generator), Contains("Tensor::uniform") && Contains("every replay"));
    CHECK_THROWS_WITH((void)Tensor::normal({4}, 0, 1, generator), Contains("Tensor::normal"));
  }
  SECTION("an optimiser other than Adam, or Adam stepping twice") {
    Tensor p = Tensor::full({3}, 1.0);
    p.set_requires_grad(true);
    sum(mul(p, p)).backward();
    optim::SGD sgd({p}, optim::SGDOptions(0.1));
    CHECK_THROWS_WITH(sgd.step(), Contains("only Adam"));
    optim::Adam adam({p});
    adam.step();
    CHECK_THROWS_WITH(adam.step(), Contains("stepped twice"));
  }
}

TEST_CASE("replay values: a generator's shift and Adam's step counts advance as eager steps would", "[graph]") {
  Generator generator(7, 100);
  CaptureSession session(Device::cpu());
  {
    const CaptureSession::Scope scope(session);
    const PhiloxStart first = reserve_philox(generator, 10);
    const PhiloxStart second = reserve_philox(generator, 6);
    CHECK(first.offset == 100);
    CHECK(second.offset == 110);
    REQUIRE(first.offset_shift != nullptr);
    CHECK(first.offset_shift == second.offset_shift);  // one value per generator
    CHECK(*first.offset_shift == 0);                     // the capture's own step
  }
  session.end_capture();
  CHECK(generator.offset() == 100);  // the capture leaves no trace
  const auto* shift = static_cast<const uint64_t*>(session.device_values());
  session.advance();                  // replay 1: the captured offsets as they are
  CHECK(*shift == 0);
  CHECK(generator.offset() == 116);
  session.advance();                  // replay 2: 16 blocks on
  CHECK(*shift == 16);
  CHECK(generator.offset() == 132);
  generator.set_state(8, generator.offset());
  CHECK_THROWS_WITH(session.advance(), Contains("seeded again"));
  // Outside a capture, nothing is read from memory.
  CHECK(reserve_philox(generator, 1).offset_shift == nullptr);
}
