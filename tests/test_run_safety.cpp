// Nothing lost: where a training run writes, what it refuses to overwrite,
// what a failed start leaves behind, what a diverged step or an error
// mid-run does to the checkpoints and the log, and what pix2pix_translate
// refuses to replace. Each case is a fault seen in a hostile review.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/training/checkpoint.h>
#include <pixgrad/training/output_names.h>
#include <pixgrad/training/run_folder.h>
#include <pixgrad/training/run_log.h>
#include <pixgrad/training/trainer.h>
#include <pixgrad/training/translation.h>
#include "test_paths.h"
#include "tiny_run.h"

using namespace pixgrad;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

bool have_data() { return testing::have_shared_data(testing::facades_root()); }

using testing::bytes_of;

std::vector<std::string> lines_of(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The folder's file names, sorted: to show that a failed start left it as it was.
std::vector<std::string> listing(const fs::path& folder) {
  std::vector<std::string> names;
  if (!fs::exists(folder)) return names;
  for (const auto& entry : fs::directory_iterator(folder)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

training::TrainConfig run_of(const fs::path& folder, int64_t iterations) {
  training::TrainConfig config = testing::tiny_config("paper", folder);
  config.max_iterations = iterations;
  return config;
}

}  // namespace

TEST_CASE("a resumed run writes only into the folder its command line names", "[safety][resume]") {
  if (!have_data()) return;
  const fs::path original = testing::fresh_folder("resume_original"), copy = testing::fresh_folder("resume_copy");
  const fs::path forged_target = testing::fresh_folder("resume_forged_target");
  training::Trainer(run_of(original, 2)).run();
  const std::string checkpoint_bytes = bytes_of(original / "checkpoint.safetensors");
  const std::string log_bytes = bytes_of(original / "log.jsonl");

  // A copy of the checkpoint, resumed elsewhere, writes beside the copy.
  fs::create_directories(copy);
  fs::copy_file(original / "checkpoint.safetensors", copy / "checkpoint.safetensors");
  training::Trainer(run_of(original, 4), (copy / "checkpoint.safetensors").string(), {"max_iterations"}).run();
  CHECK(training::load_checkpoint((copy / "checkpoint.safetensors").string()).state.iteration == 4);
  CHECK(bytes_of(original / "checkpoint.safetensors") == checkpoint_bytes);
  CHECK(bytes_of(original / "log.jsonl") == log_bytes);

  // A checkpoint under another name may sit among a user's files: its
  // folder is not taken without --output. Another checkpoint resumed into
  // a folder that holds a run would replace that run: refused.
  fs::copy_file(original / "checkpoint.safetensors", copy / "renamed.safetensors");
  CHECK_THROWS_WITH(training::Trainer(run_of(original, 5), (copy / "renamed.safetensors").string(), {"max_iterations"}),
                    Contains("not a run folder's own checkpoint.safetensors") && Contains("give --output"));
  CHECK_THROWS_WITH(
      training::Trainer(run_of(copy, 5), (copy / "renamed.safetensors").string(), {"max_iterations", "output"}),
      Contains("holds another run"));
  CHECK(training::load_checkpoint((copy / "checkpoint.safetensors").string()).state.iteration == 4);

  // A checkpoint whose options name another output folder cannot steer the run there.
  const fs::path forged_folder = testing::fresh_folder("resume_forged");
  fs::create_directories(forged_folder);
  training::Checkpoint forged = training::load_checkpoint((copy / "checkpoint.safetensors").string());
  forged.config.output = forged_target.string();
  training::save_checkpoint((forged_folder / "checkpoint.safetensors").string(), forged.tensors, forged.config,
                            forged.state);
  training::Trainer(run_of(original, 5), (forged_folder / "checkpoint.safetensors").string(), {"max_iterations"})
      .run();
  CHECK_FALSE(fs::exists(forged_target));
  CHECK(training::load_checkpoint((forged_folder / "checkpoint.safetensors").string()).state.iteration == 5);
  fs::remove_all(forged_folder);

  // An explicit --output is where a resumed run writes.
  const fs::path elsewhere = testing::fresh_folder("resume_elsewhere");
  training::TrainConfig requested = run_of(elsewhere, 6);
  training::Trainer(requested, (copy / "checkpoint.safetensors").string(), {"max_iterations", "output"}).run();
  CHECK(training::load_checkpoint((elsewhere / "checkpoint.safetensors").string()).state.iteration == 6);
  for (const fs::path& folder : {original, copy, elsewhere}) fs::remove_all(folder);
}

TEST_CASE("a new run refuses a folder holding any file a run writes, a user's preview.png or loss.png too",
          "[safety]") {
  for (const char* name : {"preview.png", "loss.png", "checkpoint.diverged.safetensors"}) {
    const fs::path folder = testing::fresh_folder("user_files");
    fs::create_directories(folder);
    { std::ofstream(folder / name) << "a user's own image"; }
    CHECK_THROWS_WITH(training::RunFolder(folder.string(), false, false),
                      Contains("files named as a run's (" + std::string(name) + ")"));
    CHECK(bytes_of(folder / name) == "a user's own image");
    fs::remove_all(folder);
  }
}

TEST_CASE("the temporaries a killed run left are removed when the folder is taken again, and nothing else",
          "[safety]") {
  if (!have_data()) return;
  const fs::path folder = testing::fresh_folder("leftovers"), victim = testing::fresh_folder("leftovers_victim");
  training::Trainer(run_of(folder, 1)).run();
  { std::ofstream(victim) << "not the run's"; }
  const std::vector<fs::path> ours = {folder / "index.html.tmp.g8Avxv", folder / "checkpoint.safetensors.tmp.A1b2C3",
                                      folder / "previews" / "iter_00000001.png.tmp.zzzzzz",
                                      folder / "checkpoints" / "epoch_0001.safetensors.tmp.QQQQQQ"};
  const std::vector<fs::path> others = {folder / "notes.txt.tmp.abcdef", folder / "index.html.tmp.ab",
                                        folder / "previews" / "mine.png.tmp.abcdef"};
  for (const fs::path& path : ours) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << "half written";
  }
  for (const fs::path& path : others) std::ofstream(path) << "a user's";
  fs::create_symlink(victim, folder / "loss.png.tmp.linked");
  training::Trainer(run_of(folder, 2), (folder / "checkpoint.safetensors").string(), {"max_iterations"}).run();
  // Only a folder that held a run is cleaned: a new one is a user's.
  const fs::path fresh = testing::fresh_folder("leftovers_fresh");
  fs::create_directories(fresh);
  { std::ofstream(fresh / "index.html.tmp.backup") << "a user's"; }
  training::Trainer(run_of(fresh, 1)).run();
  CHECK(bytes_of(fresh / "index.html.tmp.backup") == "a user's");
  fs::remove_all(fresh);
  for (const fs::path& path : ours) CHECK_FALSE(fs::exists(fs::symlink_status(path)));
  for (const fs::path& path : others) CHECK(bytes_of(path) == "a user's");
  CHECK(fs::is_symlink(folder / "loss.png.tmp.linked"));
  CHECK(bytes_of(victim) == "not the run's");
  fs::remove_all(folder);
  fs::remove(victim);
}

TEST_CASE("a resume without --output keeps out of a user's folder where a checkpoint was put", "[safety][resume]") {
  if (!have_data()) return;
  const fs::path run = testing::fresh_folder("put_run"), downloads = testing::fresh_folder("put_downloads");
  training::Trainer(run_of(run, 1)).run();
  fs::create_directories(downloads / "checkpoints");
  fs::copy_file(run / "checkpoint.safetensors", downloads / "checkpoint.safetensors");
  { std::ofstream(downloads / "index.html") << "a user's page"; }
  { std::ofstream(downloads / "checkpoints" / "epoch_0001.safetensors") << "a user's"; }
  CHECK_THROWS_WITH(
      training::Trainer(run_of(downloads, 2), (downloads / "checkpoint.safetensors").string(), {"max_iterations"}),
      Contains("holds index.html and checkpoints beside the checkpoint but no run's log.jsonl") &&
          Contains("give --output"));
  CHECK(bytes_of(downloads / "index.html") == "a user's page");
  CHECK(bytes_of(downloads / "checkpoints" / "epoch_0001.safetensors") == "a user's");
  fs::remove_all(run);
  fs::remove_all(downloads);
}

TEST_CASE("a run's file that is a link or not a regular file, or a history folder that is a file, is refused "
          "before any step",
          "[safety]") {
  if (!have_data()) return;
  const fs::path folder = testing::fresh_folder("odd_entries"), victim = testing::fresh_folder("odd_entries_victim");
  training::Trainer(run_of(folder, 1)).run();
  const std::string checkpoint = (folder / "checkpoint.safetensors").string();
  const std::string bytes = bytes_of(checkpoint);
  { std::ofstream(victim) << "not the run's"; }
  const auto refused = [&](const fs::path& entry, const std::string& why) {
    CAPTURE(entry);
    CHECK_THROWS_WITH(training::Trainer(run_of(folder, 2), checkpoint, {"max_iterations"}),
                      Contains(entry.filename().string() + "' " + why));
    CHECK(bytes_of(checkpoint) == bytes);
    CHECK(bytes_of(victim) == "not the run's");
    fs::remove_all(entry);
  };
  for (const char* name : {"checkpoint.diverged.safetensors", "options.json", "index.html", "preview.png", "loss.png"}) {
    fs::remove_all(folder / name);
    fs::create_symlink(victim, folder / name);
    refused(folder / name, "is a link");
  }
  fs::create_directory(folder / "index.html");
  refused(folder / "index.html", "is not a regular file");
  fs::remove_all(folder / "previews");
  { std::ofstream(folder / "previews") << "a file"; }
  refused(folder / "previews", "is not a folder");
  fs::remove_all(folder);
  fs::remove(victim);
}

TEST_CASE("a new run refuses a folder holding another run, and --overwrite replaces it and appends to its log",
          "[safety]") {
  if (!have_data()) return;
  const fs::path folder = testing::fresh_folder("refuse_existing");
  training::Trainer(run_of(folder, 2)).run();
  const std::string checkpoint_bytes = bytes_of(folder / "checkpoint.safetensors");
  const std::vector<std::string> old_lines = lines_of(folder / "log.jsonl");
  const std::vector<std::string> files = listing(folder);

  CHECK_THROWS_WITH(training::Trainer(run_of(folder, 1)), Contains("holds another run") && Contains("--overwrite"));
  CHECK(bytes_of(folder / "checkpoint.safetensors") == checkpoint_bytes);
  CHECK(lines_of(folder / "log.jsonl") == old_lines);
  CHECK(listing(folder) == files);

  training::Trainer(run_of(folder, 1), "", {}, /*overwrite=*/true).run();
  const std::vector<std::string> new_lines = lines_of(folder / "log.jsonl");
  REQUIRE(new_lines.size() > old_lines.size());
  CHECK(std::equal(old_lines.begin(), old_lines.end(), new_lines.begin()));  // appended, never cut
  const training::RunLog log((folder / "log.jsonl").string());
  REQUIRE(log.training_records().size() == 1);  // the new run's records only
  CHECK(log.training_records()[0]["iteration"] == 1);
  CHECK(training::load_checkpoint((folder / "checkpoint.safetensors").string()).state.iteration == 1);
  fs::remove_all(folder);
}

TEST_CASE("a failed start leaves the output folder as it was", "[safety]") {
  if (!have_data()) return;
  const fs::path fresh = testing::fresh_folder("failed_start_new");
  SECTION("a split that does not exist") {
    training::TrainConfig config = run_of(fresh, 1);
    config.test_split = "no_such_split";
    CHECK_THROWS(training::Trainer(config));
    CHECK_FALSE(fs::exists(fresh));
  }
  SECTION("options that do not fit the networks fail before the run, naming them") {
    training::TrainConfig config = run_of(fresh, 1);
    config.n_layers = 8;  // eight stride-2 layers cannot fit a 32-pixel crop
    CHECK_THROWS_WITH(training::Trainer(config), Contains("the discriminator does not fit") &&
                                                     Contains("--crop-size 32") && Contains("fewer --n-layers"));
    CHECK_FALSE(fs::exists(fresh));
    // Chainer's U-Net normalises its innermost layer too: at 32x32, five
    // halvings leave one value per channel for batch norm at a batch of 1.
    // Its discriminator has no depth to choose, so --n-layers is not named.
    config = run_of(fresh, 1);
    config.preset = "chainer";
    config.num_downs = 5;
    CHECK_THROWS_WITH(training::Trainer(config), Contains("the generator does not fit") &&
                                                     Contains("--num-downs 5") && !Contains("n-layers"));
    CHECK_FALSE(fs::exists(fresh));
  }
  SECTION("an existing run's folder") {
    training::Trainer(run_of(fresh, 1)).run();
    const std::vector<std::string> files = listing(fresh);
    const std::string log = bytes_of(fresh / "log.jsonl");
    training::TrainConfig config = run_of(fresh, 2);
    config.dataset = (fresh / "missing").string();
    CHECK_THROWS(training::Trainer(config, (fresh / "checkpoint.safetensors").string(), {"dataset"}));
    CHECK(listing(fresh) == files);
    CHECK(bytes_of(fresh / "log.jsonl") == log);
  }
  fs::remove_all(fresh);
}

TEST_CASE("two runs cannot share an output folder", "[safety]") {
  const fs::path folder = testing::fresh_folder("locked");
  {
    const training::RunFolder first(folder.string(), false, false);
    CHECK_THROWS_WITH(training::RunFolder(folder.string(), false, false), Contains("in use by another run"));
  }
  // Released with its holder: the folder, which the first claim created and nothing filled, is gone again.
  CHECK_FALSE(fs::exists(folder));
  CHECK_NOTHROW(training::RunFolder(folder.string(), false, false));
}

TEST_CASE("the output folder may not lie inside the dataset", "[safety]") {
  if (!have_data()) return;
  training::TrainConfig config = run_of(fs::path(testing::facades_root()) / "train" / "previews", 1);
  CHECK_THROWS_WITH(training::Trainer(config), Contains("inside the dataset"));
  CHECK_FALSE(fs::exists(fs::path(testing::facades_root()) / "train" / "previews"));
}

TEST_CASE("a diverged step stops the run, keeps the last good checkpoint and writes the bad state aside",
          "[safety][nan]") {
  if (!have_data()) return;
  const fs::path folder = testing::fresh_folder("diverged");
  training::TrainConfig config = run_of(folder, 6);
  config.snapshot_interval = 1;
  {
    training::Trainer trainer(config);
    testing::spoil_generator_step(trainer, 3);
    const training::RunSummary summary = trainer.run();
    CHECK(summary.diverged);
    CHECK(summary.iterations == 3);
  }

  const training::Checkpoint good = training::load_checkpoint((folder / "checkpoint.safetensors").string());
  CHECK(good.state.iteration == 2);
  int64_t nonfinite = 0;
  for (const auto& [name, tensor] : good.tensors)
    for (const double v : tensor.to_double_vector()) nonfinite += !std::isfinite(v);
  CHECK(nonfinite == 0);
  CHECK(training::load_checkpoint((folder / "checkpoint.diverged.safetensors").string()).state.iteration == 3);

  // Every line of the log is JSON without nulls, and names the divergence.
  bool diverged_event = false;
  for (const std::string& line : lines_of(folder / "log.jsonl")) {
    INFO(line);
    CHECK(line.find("null") == std::string::npos);
    const nlohmann::json record = nlohmann::json::parse(line);
    if (record.value("event", "") == "diverged") {
      diverged_event = true;
      CHECK_THAT(record["detail"].get<std::string>(), Contains("G's gradients"));
    }
  }
  CHECK(diverged_event);

  // The run resumes from the good checkpoint and reads its own log.
  const training::RunSummary resumed =
      training::Trainer(run_of(folder, 4), (folder / "checkpoint.safetensors").string(), {"max_iterations"}).run();
  CHECK_FALSE(resumed.diverged);
  CHECK(resumed.iterations == 4);
  fs::remove_all(folder);
}

TEST_CASE("a log is read whatever values it holds: nulls, strings, broken lines, events", "[safety][log]") {
  const fs::path folder = testing::fresh_folder("odd_log");
  fs::create_directories(folder);
  const fs::path path = folder / "log.jsonl";
  std::ofstream(path) << R"({"event":"start","iteration":0})" << "\n"
                      << R"({"iteration":1,"loss_G":2.5,"loss_L1":null,"loss_D":"nan"})" << "\n"
                      << R"({"iteration":2,"loss_G":null})" << "\n"
                      << "not json at all\n"
                      << R"({"iteration":"three","loss_G":1})" << "\n"
                      << R"({"iteration":3,"loss_G":2.0})" << "\n"
                      << R"({"event":"resume","iteration":1})" << "\n"
                      << R"({"iteration":2,"loss_G":1.5})" << "\n";
  training::RunLog log(path.string());
  REQUIRE(log.training_records().size() == 2);
  CHECK(log.training_records()[0]["iteration"] == 1);
  CHECK(log.training_records()[1]["loss_G"] == 1.5);
  // Writing a non-finite number gives a string, never null.
  log.write({{"iteration", 3}, {"loss_G", std::nan("")}, {"loss_D", INFINITY}});
  CHECK(lines_of(path).back() == R"({"iteration":3,"loss_D":"inf","loss_G":"nan"})");
  fs::remove_all(folder);
}

TEST_CASE("an error between two steps saves the steps completed since the last checkpoint", "[safety]") {
  if (!have_data()) return;
  // A dataset whose train split holds real pairs and one broken JPEG.
  const fs::path data = testing::fresh_folder("broken_data"), folder = testing::fresh_folder("broken_run");
  fs::create_directories(data / "train");
  fs::create_directories(data / "test");
  for (int i = 1; i <= 5; ++i)
    fs::copy_file(fs::path(testing::facades_root()) / "train" / (std::to_string(i) + ".jpg"),
                  data / "train" / (std::to_string(i) + ".jpg"));
  fs::copy_file(fs::path(testing::facades_root()) / "test" / "1.jpg", data / "test" / "1.jpg");
  const std::string broken = (data / "train" / "6.jpg").string();
  std::ofstream(broken, std::ios::binary) << bytes_of(data / "train" / "1.jpg").substr(0, 300);

  training::TrainConfig config = testing::tiny_config("paper", folder, data.string());
  config.max_iterations = 12;  // past the broken image, wherever the shuffle puts it
  std::string message;
  try {
    training::Trainer(config).run();
  } catch (const Error& error) {
    message = error.what();
  }
  CHECK_THAT(message, Contains(broken));
  // The steps before the broken image were saved, and the log says what happened.
  const training::Checkpoint saved = training::load_checkpoint((folder / "checkpoint.safetensors").string());
  CHECK(saved.state.iteration >= 1);
  bool error_event = false;
  for (const std::string& line : lines_of(folder / "log.jsonl")) {
    const nlohmann::json record = nlohmann::json::parse(line);
    if (record.value("event", "") == "error") {
      error_event = true;
      CHECK(record["iteration"] == saved.state.iteration);
    }
  }
  CHECK(error_event);
  fs::remove_all(data);
  fs::remove_all(folder);
}

TEST_CASE("Ctrl-C stops a run only while it runs", "[safety]") {
  if (!have_data()) return;
  const fs::path folder = testing::fresh_folder("signals");
  const auto current_handler = [] {
    void (*handler)(int) = std::signal(SIGINT, SIG_DFL);
    std::signal(SIGINT, handler);
    return handler;
  };
  void (*const before)(int) = current_handler();
  {
    training::Trainer trainer(run_of(folder, 1));
    CHECK(current_handler() == before);  // setting up (which may block on a slow file) leaves Ctrl-C alone
    void (*during)(int) = before;
    trainer.model().set_before_update([&](models::Network, nn::Module&) { during = current_handler(); });
    trainer.run();
    CHECK(during != before);  // the run's handler: save, then stop
  }
  CHECK(current_handler() == before);
  fs::remove_all(folder);
}

TEST_CASE("translation outputs never replace an input, each other, or earlier results unless told to",
          "[safety][translate]") {
  const fs::path folder = testing::fresh_folder("translate_names");
  fs::create_directories(folder / "in");
  for (const char* name : {"photo.jpg", "photo.png", "other.jpg"}) std::ofstream(folder / "in" / name) << "x";
  const std::vector<std::string> inputs{(folder / "in" / "photo.jpg").string(), (folder / "in" / "photo.png").string(),
                                        (folder / "in" / "other.jpg").string()};

  const std::vector<std::string> outputs = training::translation_outputs(inputs, (folder / "out").string(), false);
  CHECK(outputs == std::vector<std::string>{(folder / "out" / "photo_jpg.png").string(),
                                            (folder / "out" / "photo_png.png").string(),
                                            (folder / "out" / "other.png").string()});
  // Into the inputs' own folder: refused, results there would be read as inputs next time.
  CHECK_THROWS_WITH(training::translation_outputs({inputs[2]}, (folder / "in").string(), true),
                    Contains("folder of the inputs"));
  // An output that is an input (a single file translated into a folder holding it as photo.png).
  fs::create_directories(folder / "elsewhere");
  std::ofstream(folder / "elsewhere" / "photo.png") << "x";
  CHECK_THROWS_WITH(training::translation_outputs({inputs[1], (folder / "elsewhere" / "photo.png").string()},
                                                  (folder / "elsewhere").string(), true),
                    Contains("folder of the inputs"));
  // An earlier result stays unless --overwrite.
  fs::create_directories(folder / "out");
  std::ofstream(folder / "out" / "other.png") << "earlier";
  CHECK_THROWS_WITH(training::translation_outputs(inputs, (folder / "out").string(), false),
                    Contains("exists already") && Contains("--overwrite"));
  CHECK_NOTHROW(training::translation_outputs(inputs, (folder / "out").string(), true));
  fs::remove_all(folder);
}

TEST_CASE("a run never writes through a link in its folder, and a log cut mid-line is mended", "[safety]") {
  if (!have_data()) return;
  const fs::path folder = testing::fresh_folder("links"), victim = testing::fresh_folder("links_victim");
  fs::create_directories(folder);
  fs::create_directories(victim);
  std::ofstream(victim / "precious") << "precious";
  fs::create_symlink(victim / "precious", folder / "log.jsonl");
  // Refused as the run is made, before any step, even with --overwrite.
  CHECK_THROWS_WITH(training::Trainer(run_of(folder, 1), "", {}, /*overwrite=*/true),
                    Contains("log.jsonl' is a link") && Contains("remove the link"));
  CHECK(bytes_of(victim / "precious") == "precious");
  CHECK_FALSE(fs::exists(folder / "checkpoint.safetensors"));

  // A log whose last write was cut short: the next record starts a line of its own.
  fs::remove(folder / "log.jsonl");
  std::ofstream(folder / "log.jsonl") << R"({"iteration":1,"loss_G":2.0})" << "\n" << R"({"eve)";
  training::Trainer(run_of(folder, 1), "", {}, /*overwrite=*/true).run();
  const std::vector<std::string> lines = lines_of(folder / "log.jsonl");
  REQUIRE(lines.size() >= 3);
  CHECK(lines[1] == R"({"eve)");
  CHECK(nlohmann::json::parse(lines[2])["event"] == "start");
  fs::remove_all(folder);
  fs::remove_all(victim);
}

TEST_CASE("a short last batch that does not fit the networks is refused before the run", "[safety]") {
  if (!have_data()) return;
  const fs::path folder = testing::fresh_folder("short_batch");
  training::TrainConfig config = testing::tiny_config("chainer", folder);
  config.num_downs = 5;   // the chainer U-Net normalises its innermost level, 1x1 at a 32-pixel crop
  config.batch_size = 3;  // 400 pairs: 133 batches of 3 and a last one of 1
  config.preview_count = 0;
  CHECK_THROWS_WITH(training::Trainer(config), Contains("the generator does not fit a batch of 1 ") &&
                                                   Contains("leaves the epoch's last batch more images"));
  CHECK_FALSE(fs::exists(folder));
}

TEST_CASE("a checkpoint that cannot continue is refused at resume", "[safety][nan]") {
  if (!have_data()) return;
  const fs::path folder = testing::fresh_folder("bad_resume"), forged = testing::fresh_folder("bad_resume_forged");
  training::Trainer(run_of(folder, 2)).run();
  fs::create_directories(forged);
  const training::Checkpoint good = training::load_checkpoint((folder / "checkpoint.safetensors").string());
  const auto forge = [&](auto change) {
    training::Checkpoint bad = good;
    for (auto& [name, tensor] : bad.tensors) tensor = tensor.clone();
    change(bad);
    const std::string path = (forged / "checkpoint.safetensors").string();
    training::save_checkpoint(path, bad.tensors, bad.config, bad.state);
    return path;
  };
  SECTION("a NaN weight") {
    const std::string path = forge([](training::Checkpoint& c) { fill_(c.tensors.at("G.down0.weight"), std::nan("")); });
    CHECK_THROWS_WITH(training::Trainer(run_of(forged, 4), path, {"max_iterations"}),
                      Contains("G.down0.weight") && Contains("diverged"));
  }
  SECTION("a negative second moment") {
    const std::string path =
        forge([](training::Checkpoint& c) { fill_(c.tensors.at("optimizer_G.0.exp_avg_sq"), -1.0); });
    CHECK_THROWS_WITH(training::Trainer(run_of(forged, 4), path, {"max_iterations"}), Contains("exp_avg_sq"));
  }
  SECTION("a tensor of another shape, or options out of range: the checkpoint is named") {
    std::string path = forge([](training::Checkpoint& c) { c.tensors.at("G.down0.weight") = Tensor::zeros({1, 2, 3, 4}); });
    CHECK_THROWS_WITH(training::Trainer(run_of(forged, 4), path, {"max_iterations"}),
                      Contains("checkpoint '" + path + "'") && Contains("down0.weight") &&
                          Contains("do not match the networks"));
    path = forge([](training::Checkpoint& c) { c.config.crop_size = 0; });
    CHECK_THROWS_WITH(training::Translator(training::load_checkpoint(path), path, {}, Device::cpu()),
                      Contains("checkpoint '" + path + "': the options stored in it: --crop-size"));
  }
  SECTION("a negative running variance, refused by translation too") {
    const std::string path =
        forge([](training::Checkpoint& c) { fill_(c.tensors.at("G.down1_norm.running_var"), -1.0); });
    CHECK_THROWS_WITH(training::Trainer(run_of(forged, 4), path, {"max_iterations"}),
                      Contains("G.down1_norm.running_var holds -1"));
    CHECK_THROWS_WITH(training::Translator(training::load_checkpoint(path), path, {}, Device::cpu()),
                      Contains("G.down1_norm.running_var holds -1") && Contains("translate with an earlier"));
  }
  SECTION("a position that does not add up") {
    const std::string path = forge([](training::Checkpoint& c) {
      c.state.iteration = 799;
      c.state.epoch = 0;
    });
    CHECK_THROWS_WITH(training::Trainer(run_of(forged, 900), path, {"max_iterations"}).run(),
                      Contains("does not fit"));
  }
  fs::remove_all(folder);
  fs::remove_all(forged);
}
