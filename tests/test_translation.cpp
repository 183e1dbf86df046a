// Training and translating at native, non-square sizes, end to end: a run
// with --preprocess none on A|B pairs whose sides are not multiples of the
// U-Net's, then pix2pix_translate's Translator on pairs of another odd size,
// in grey and colour; each result comes back at its input's size, with
// scores against the truth half.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include <pixgrad/data/datasets.h>
#include <pixgrad/data/image.h>
#include <pixgrad/kernels/philox.h>
#include <pixgrad/training/checkpoint.h>
#include <pixgrad/training/output_names.h>
#include <pixgrad/training/trainer.h>
#include <pixgrad/training/translation.h>
#include "tiny_run.h"

using namespace pixgrad;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// An A|B pair of `half_width` x `height` halves: A random, B a smooth
// function of A (so there is something to learn), `channels` each.
data::Image synthetic_pair(int half_width, int height, int channels, uint64_t seed) {
  data::Image pair(2 * half_width, height, channels);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < half_width; ++x)
      for (int c = 0; c < channels; ++c) {
        const uint32_t word = philox::block(seed, static_cast<uint64_t>((y * half_width + x) * channels + c)).word[0];
        const uint8_t a = static_cast<uint8_t>(word & 0xff);
        pair.at(x, y, c) = a;
        pair.at(half_width + x, y, c) = static_cast<uint8_t>(255 - a / 2);
      }
  return pair;
}

fs::path synthetic_dataset(const std::string& name, int half_width, int height, int channels) {
  const fs::path root = testing::fresh_folder(name);
  for (const char* split : {"train", "test"}) {
    fs::create_directories(root / split);
    for (int i = 0; i < 3; ++i)
      data::save_png((root / split / (std::to_string(i) + ".png")).string(),
                     synthetic_pair(half_width, height, channels, static_cast<uint64_t>(i + (split[1] == 'e' ? 10 : 0))));
  }
  return root;
}

training::TrainConfig native_size_config(const fs::path& data, const fs::path& out) {
  training::TrainConfig config = testing::tiny_config("paper", out, data.string());
  config.preprocess = "none";
  config.num_downs = 5;  // sides cropped to multiples of 32
  config.max_iterations = 3;
  config.no_flip = true;
  return config;
}

}  // namespace

TEST_CASE("non-square images train at their own size and translate back to it", "[training][translate]") {
  const int channels = GENERATE(1, 3);
  CAPTURE(channels);
  const fs::path data = synthetic_dataset("native_data_" + std::to_string(channels), 72, 40, channels);
  const fs::path out = testing::fresh_folder("native_run_" + std::to_string(channels));
  training::TrainConfig config = native_size_config(data, out);
  config.input_nc = channels;
  config.output_nc = channels;
  config.direction = "AtoB";
  REQUIRE(training::Trainer(config).run().iterations == 3);
  const std::string checkpoint = (out / "checkpoint.safetensors").string();
  CHECK(training::load_checkpoint(checkpoint).config.input_nc == channels);

  // Another odd size at translation: 50x38 halves, padded to 64x64 and cropped back.
  const std::string pair = (data / "odd.png").string();
  data::save_png(pair, synthetic_pair(50, 38, channels, 99));
  training::TranslationOptions options;
  options.aligned = true;
  const training::Translator translator(training::load_checkpoint(checkpoint), checkpoint, options, Device::cpu());
  const training::Translation result = translator.translate(pair);
  for (const data::Image* image : {&result.input, &result.generated, &result.truth}) {
    CHECK(image->width == 50);
    CHECK(image->height == 38);
    CHECK(image->channels == channels);
  }
  REQUIRE(result.scores);
  CHECK(std::isfinite(result.scores->l1));
  CHECK(result.scores->ssim <= 1.0);
  CHECK(result.generated.pixels != result.input.pixels);
  // The input shown is the A half itself (no resize under --preprocess none).
  const data::Image a = data::crop(data::load_image(pair), 0, 0, 50, 38);
  CHECK(result.input.pixels == a.pixels);

  SECTION("--aspect-ratio widens what is written") {
    options.aspect_ratio = 2.0;
    const training::Translator wide(training::load_checkpoint(checkpoint), checkpoint, options, Device::cpu());
    const training::Translation widened = wide.translate(pair);
    CHECK(widened.generated.width == 100);
    CHECK(widened.generated.height == 38);
  }
  SECTION("an image whose halves differ in width is refused in one line") {
    const std::string odd = (data / "odd_width.png").string();
    data::save_png(odd, data::Image(51, 20, channels));
    CHECK_THROWS_WITH(translator.translate(odd), Contains(odd) && Contains("odd"));
  }
  fs::remove_all(out);
  fs::remove_all(data);
}

TEST_CASE("training images smaller than the U-Net's multiple are refused before the run", "[training][translate]") {
  const fs::path data = synthetic_dataset("tiny_images", 12, 12, 3);
  const fs::path out = testing::fresh_folder("tiny_images_run");
  const training::TrainConfig config = native_size_config(data, out);
  CHECK_THROWS_WITH(training::Trainer(config), Contains("12x12") && Contains("32"));
  CHECK_FALSE(fs::exists(out / "checkpoint.safetensors"));
  fs::remove_all(data);
}

TEST_CASE("translation never writes over an input, nor into a folder that holds inputs", "[translate][safety]") {
  const fs::path root = testing::fresh_folder("translate_outputs");
  fs::create_directories(root / "out" / "images");
  const std::string inside = (root / "out" / "images" / "a.png").string();
  data::save_png(inside, data::Image(4, 4, 3));
  // An input in the output's images/ would be replaced by a result named like it, with or without --overwrite.
  for (const bool overwrite : {false, true})
    CHECK_THROWS_WITH(training::translation_files({inside}, (root / "out").string(), overwrite, true),
                      Contains("lies inside --output"));
  // A result's page image may not be an input elsewhere either.
  fs::create_directories(root / "in");
  const std::string input = (root / "in" / "a.png").string();
  data::save_png(input, data::Image(4, 4, 3));
  CHECK_THROWS_WITH(training::translation_files({input}, "", false, true), Contains("--output"));
  const auto files = training::translation_files({input}, (root / "results").string(), false, true);
  CHECK(files[0].input == (root / "results" / "images" / "a_input.png").string());
  CHECK(files[0].truth == (root / "results" / "images" / "a_truth.png").string());
  // A dangling link where a result would go counts as a file there.
  fs::create_directories(root / "results" / "images");
  fs::create_symlink(root / "nowhere", root / "results" / "images" / "a_truth.png");
  CHECK_THROWS_WITH(training::translation_files({input}, (root / "results").string(), false, true),
                    Contains("a_truth.png") && Contains("exists already"));
  fs::remove_all(root);
}
