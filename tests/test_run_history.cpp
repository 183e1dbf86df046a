// A run's history and its continuations: history checkpoints pruned to
// --keep-checkpoints, a preview per snapshot, options.json and index.html;
// --resume with a larger --epochs; --init-from for fine-tuning, with
// mismatched networks or channel counts refused in one line.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include <nlohmann/json.hpp>

#include <pixgrad/data/datasets.h>
#include <pixgrad/training/checkpoint.h>
#include <pixgrad/training/run_history.h>
#include <pixgrad/training/trainer.h>
#include "test_paths.h"
#include "tiny_run.h"

using namespace pixgrad;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// A dataset of `train` + 2 facade pairs, linked from the real facades.
fs::path small_facades(const std::string& name, int train) {
  const fs::path root = testing::fresh_folder(name + "_data");
  const std::vector<std::string> files = data::list_image_files(testing::facades_root() + "/train");
  for (const auto& [split, first, count] : {std::tuple<const char*, int, int>{"train", 0, train}, {"test", 100, 2}}) {
    fs::create_directories(root / split);
    for (int i = 0; i < count; ++i) {
      const fs::path source = files[static_cast<size_t>(first + i)];
      fs::create_symlink(source, root / split / source.filename());
    }
  }
  return root;
}

std::string read_text(const fs::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

std::vector<int64_t> numbers(const std::vector<training::HistoryFile>& files) {
  std::vector<int64_t> out;
  for (const auto& file : files) out.push_back(file.number);
  return out;
}

}  // namespace

TEST_CASE("a run keeps history checkpoints, every snapshot's preview, options.json and a results page",
          "[training][history]") {
  if (!testing::have_shared_data(testing::facades_root())) return;
  const fs::path data = small_facades("history", 4);
  const fs::path out = testing::fresh_folder("history_run");
  training::TrainConfig config = testing::tiny_config("paper", out, data.string());
  config.epochs = 3;
  config.save_epoch_freq = 1;
  config.keep_checkpoints = 2;
  config.snapshot_interval = 4;
  config.eval_interval = 4;
  const training::RunSummary summary = training::Trainer(config).run();
  REQUIRE(summary.iterations == 12);

  // Epochs 1..3 were saved; the oldest was pruned.
  CHECK(numbers(training::list_history_checkpoints((out / "checkpoints").string())) == std::vector<int64_t>{2, 3});
  const training::Checkpoint history = training::load_checkpoint((out / "checkpoints" / "epoch_0003.safetensors").string());
  CHECK_FALSE(training::holds_training_state(history));
  CHECK(history.state.epoch == 3);
  // The generator of the last epoch is the final one.
  const training::Checkpoint last = training::load_checkpoint((out / "checkpoint.safetensors").string());
  for (const auto& [name, tensor] : training::tensors_with_prefix(history, "G."))
    CHECK(tensor.to_vector() == last.tensors.at("G." + name).to_vector());

  CHECK(numbers(training::list_previews((out / "previews").string())) == std::vector<int64_t>{4, 8, 12});
  const nlohmann::json options = nlohmann::json::parse(read_text(out / "options.json"));
  CHECK(options["preset"] == "paper");
  CHECK(options["keep_checkpoints"] == 2);
  const std::string page = read_text(out / "index.html");
  const size_t newest = page.find("previews/iter_00000012.png"), oldest = page.find("previews/iter_00000004.png");
  REQUIRE(newest != std::string::npos);
  REQUIRE(oldest != std::string::npos);
  CHECK(newest < oldest);
  CHECK_THAT(page, Contains("<svg"));
  fs::remove_all(out);
  fs::remove_all(data);
}

TEST_CASE("a resume may extend --epochs, and a history checkpoint is for --init-from, not --resume",
          "[training][history][resume]") {
  if (!testing::have_shared_data(testing::facades_root())) return;
  const fs::path data = small_facades("extend", 2);
  const fs::path out = testing::fresh_folder("extend_run");
  training::TrainConfig config = testing::tiny_config("paper", out, data.string());
  config.epochs = 2;
  config.save_epoch_freq = 2;
  REQUIRE(training::Trainer(config).run().iterations == 4);
  const std::string checkpoint = (out / "checkpoint.safetensors").string();

  training::TrainConfig longer = config;
  longer.epochs = 1;
  CHECK_THROWS_WITH(training::Trainer(longer, checkpoint, {"epochs"}), Contains("--epochs 2 or more"));
  longer.epochs = 3;
  const training::RunSummary extended = training::Trainer(longer, checkpoint, {"epochs"}).run();
  CHECK(extended.iterations == 6);
  CHECK(extended.trained == 2);
  CHECK(training::load_checkpoint(checkpoint).config.epochs == 3);

  // What is trained must still match.
  training::TrainConfig other = longer;
  other.crop_size = 64;
  other.load_size = 72;
  CHECK_THROWS_WITH(training::Trainer(other, checkpoint, {"crop_size", "load_size"}), Contains("--load-size"));

  const std::string history = (out / "checkpoints" / "epoch_0002.safetensors").string();
  CHECK_THROWS_WITH(training::Trainer(config, history), Contains("generator alone") && Contains("--init-from"));
  fs::remove_all(out);
  fs::remove_all(data);
}

TEST_CASE("a run started with --init-from takes trained weights, and networks and channels must match",
          "[training][history][init]") {
  if (!testing::have_shared_data(testing::facades_root())) return;
  const fs::path data = small_facades("init", 2);
  const fs::path out = testing::fresh_folder("init_source");
  training::TrainConfig config = testing::tiny_config("paper", out, data.string());
  config.max_iterations = 2;
  training::Trainer(config).run();
  const std::string source = (out / "checkpoint.safetensors").string();
  const training::Checkpoint trained = training::load_checkpoint(source);

  const fs::path tuned = testing::fresh_folder("init_tuned");
  training::TrainConfig fine = config;
  fine.output = tuned.string();
  fine.init_from = source;
  fine.lr = 1e-5;  // a new option: fine-tuning is a new run
  {
    training::Trainer trainer(fine);
    for (const auto& [name, tensor] : trainer.model().generator().state_dict())
      CHECK(tensor.to_vector() == trained.tensors.at("G." + name).to_vector());
    for (const auto& [name, tensor] : trainer.model().discriminator().state_dict())
      CHECK(tensor.to_vector() == trained.tensors.at("D." + name).to_vector());
    CHECK(trainer.run().iterations == 2);  // counted from 0: a new run
  }
  CHECK(training::load_checkpoint((tuned / "checkpoint.safetensors").string()).config.init_from == source);

  SECTION("another width") {
    training::TrainConfig wider = fine;
    wider.ngf = 16;
    fs::remove_all(tuned);
    CHECK_THROWS_WITH(training::Trainer(wider), Contains("--init-from") && Contains(source) && Contains("--ngf 8"));
  }
  SECTION("another channel count") {
    training::TrainConfig grey = fine;
    grey.input_nc = 1;
    fs::remove_all(tuned);
    CHECK_THROWS_WITH(training::Trainer(grey), Contains("3 input") && Contains("--input-nc"));
  }
  SECTION("with --resume") {
    CHECK_THROWS_WITH(training::Trainer(fine, source, {"init_from"}), Contains("give one of them"));
  }
  fs::remove_all(tuned);
  fs::remove_all(out);
  fs::remove_all(data);
}

TEST_CASE("pruning keeps what is not a history checkpoint, and later epochs of a superseded branch", "[history]") {
  const fs::path folder = testing::fresh_folder("prune");
  fs::create_directories(folder);
  for (const char* name : {"epoch_0001.safetensors", "epoch_0002.safetensors", "epoch_0003.safetensors",
                           "epoch_0009.safetensors", "epoch_1.safetensors", "my_notes.safetensors",
                           "epoch_0002.safetensors.bak"})
    std::ofstream(folder / name) << "x";
  const std::vector<std::string> removed = training::prune_history_checkpoints(folder.string(), 2, 3);
  CHECK(removed == std::vector<std::string>{(folder / "epoch_0001.safetensors").string()});
  for (const char* kept : {"epoch_0002.safetensors", "epoch_0003.safetensors", "epoch_0009.safetensors",
                           "my_notes.safetensors", "epoch_0002.safetensors.bak"})
    CHECK(fs::exists(folder / kept));
  CHECK(training::prune_history_checkpoints(folder.string(), 0, 100).empty());  // 0 keeps all
  fs::remove_all(folder);
}

TEST_CASE("a run told to --overwrite moves the replaced run's previews and history checkpoints aside", "[history][safety]") {
  if (!testing::have_shared_data(testing::facades_root())) return;
  const fs::path data = small_facades("aside", 2);
  const fs::path out = testing::fresh_folder("aside_run");
  training::TrainConfig config = testing::tiny_config("paper", out, data.string());
  config.epochs = 1;
  config.save_epoch_freq = 1;
  config.snapshot_interval = 1;
  training::Trainer(config).run();
  REQUIRE(fs::exists(out / "checkpoints" / "epoch_0001.safetensors"));
  // A folder holding any of a run's files is taken ...
  fs::remove(out / "checkpoint.safetensors");
  fs::remove(out / "log.jsonl");
  CHECK_THROWS_WITH(training::Trainer(config), Contains("holds another run") && Contains("previews"));
  // ... and a run told to replace it keeps the old history under other names.
  config.seed = 8;
  training::Trainer(config, "", {}, /*overwrite=*/true).run();
  CHECK(fs::exists(out / "checkpoints.replaced-1" / "epoch_0001.safetensors"));
  CHECK(fs::exists(out / "previews.replaced-1" / "iter_00000002.png"));
  CHECK(numbers(training::list_previews((out / "previews").string())) == std::vector<int64_t>{1, 2});
  fs::remove_all(out);
  fs::remove_all(data);
}
