// The --preprocess modes of the PyTorch pix2pix (data/base_dataset.py), the
// size-multiple window, channel counts through AlignedDataset, and the
// loader's refusal of mixed sizes. Expected sizes are worked out by hand from
// the reference's definitions; expected pixels from the pattern written.
#include <catch2/catch.hpp>

#include "test_paths.h"
#include "tiny_run.h"

#include <filesystem>

#include <pixgrad/core/error.h>
#include <pixgrad/data/datasets.h>
#include <pixgrad/data/loader.h>

using namespace pixgrad;
using namespace pixgrad::data;
namespace fs = std::filesystem;

namespace {

// Pixel (x, y, c) of the A half; B's is the same plus `b_offset`, so each value says where it came from.
uint8_t pattern(int x, int y, int c) { return static_cast<uint8_t>((x + 16 * y + 3 * c) % 100); }

// Writes root/train/<name>.png: two width x height halves side by side, as the aligned layout wants.
void write_pair(const fs::path& root, const std::string& name, int width, int height, int channels = 3,
                int b_offset = 100) {
  Image both(2 * width, height, channels);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        both.at(x, y, c) = pattern(x, y, c);
        both.at(width + x, y, c) = static_cast<uint8_t>(pattern(x, y, c) + b_offset);
      }
    }
  }
  fs::create_directories(root / "train");
  save_png((root / "train" / (name + ".png")).string(), both);
}

// The [channels, height, width] tensor of the pattern's window at (x0, y0), mirrored if `flip`.
std::vector<float> expected_window(int x0, int y0, int width, int height, int channels, int offset, bool flip) {
  std::vector<float> values;
  for (int c = 0; c < channels; ++c) {
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        const int source_x = x0 + (flip ? width - 1 - x : x);
        values.push_back((pattern(source_x, y0 + y, c) + offset) / 127.5f - 1.0f);
      }
    }
  }
  return values;
}

AlignedOptions options_for(PreprocessMode mode, int load_size, int crop_size, int size_multiple = 1) {
  AlignedOptions options;
  options.mode = mode;
  options.load_size = load_size;
  options.crop_size = crop_size;
  options.size_multiple = size_multiple;
  return options;
}

// [C, H, W] of an example's input, checking the target has the same geometry.
Shape input_shape(const AlignedDataset& dataset, uint64_t seed) {
  const Example example = dataset.get(0, seed);
  CHECK(example.target.shape() == example.input.shape());
  return example.input.shape();
}

// Runs `action`, which must throw one line containing every one of `parts`.
template <typename Action>
void require_error(Action action, const std::vector<std::string>& parts) {
  try {
    action();
    FAIL("no error (expected: " << parts.front() << ")");
  } catch (const Error& error) {
    const std::string message = error.what();
    INFO(message);
    CHECK(message.find('\n') == std::string::npos);
    for (const std::string& part : parts) CHECK(message.find(part) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("preprocess modes parse and print as the reference names them", "[data][preprocess]") {
  for (const char* name : {"resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"}) {
    CHECK(std::string(preprocess_name(parse_preprocess(name))) == name);
  }
  CHECK(parse_preprocess("scale_width") == PreprocessMode::ScaleWidth);
  CHECK_THROWS_WITH(parse_preprocess("resize"),
                    "--preprocess must be resize_and_crop, crop, scale_width, scale_width_and_crop or none, not "
                    "'resize'");
  CHECK(preprocess_crops(PreprocessMode::ResizeAndCrop));
  CHECK(preprocess_crops(PreprocessMode::Crop));
  CHECK(preprocess_crops(PreprocessMode::ScaleWidthAndCrop));
  CHECK_FALSE(preprocess_crops(PreprocessMode::ScaleWidth));
  CHECK_FALSE(preprocess_crops(PreprocessMode::None));
}

TEST_CASE("resized_size follows base_dataset.py on non-square images", "[data][preprocess]") {
  // "WxH", so that a failure prints the sizes.
  auto size = [](PreprocessMode mode, int width, int height, int load, int crop) {
    const ImageSize s = resized_size(mode, width, height, load, crop);
    return std::to_string(s.width) + "x" + std::to_string(s.height);
  };
  // transforms.Resize([load, load]).
  CHECK(size(PreprocessMode::ResizeAndCrop, 400, 300, 286, 256) == "286x286");
  // __scale_width: w = load, h = int(max(load * oh / ow, crop)).
  // 286 * 300 / 400 = 214.5 -> int 214 (crop 200 below it).
  CHECK(size(PreprocessMode::ScaleWidth, 400, 300, 286, 200) == "286x214");
  // 286 * 400 / 300 = 381.33 -> 381.
  CHECK(size(PreprocessMode::ScaleWidth, 300, 400, 286, 256) == "286x381");
  CHECK(size(PreprocessMode::ScaleWidthAndCrop, 300, 400, 286, 256) == "286x381");
  // max(..., crop): 214.5 is below a crop of 256, so the height is 256.
  CHECK(size(PreprocessMode::ScaleWidth, 400, 300, 286, 256) == "286x256");
  CHECK(size(PreprocessMode::ScaleWidthAndCrop, 400, 300, 286, 256) == "286x256");
  // Kept when ow == load and oh >= crop; resized (upwards) when ow == load but oh < crop.
  CHECK(size(PreprocessMode::ScaleWidth, 286, 300, 286, 256) == "286x300");
  CHECK(size(PreprocessMode::ScaleWidth, 286, 200, 286, 256) == "286x256");
  // Shrinking: 256 * 100 / 1000 = 25.6 -> 25.
  CHECK(size(PreprocessMode::ScaleWidth, 1000, 100, 256, 16) == "256x25");
  // crop and none resize nothing.
  CHECK(size(PreprocessMode::Crop, 400, 300, 286, 256) == "400x300");
  CHECK(size(PreprocessMode::None, 30, 500, 286, 256) == "30x500");
}

TEST_CASE("aligned: every mode's example size on non-square halves", "[data][preprocess]") {
  const fs::path root = testing::fresh_folder("preprocess_sizes");
  write_pair(root / "landscape", "p", 50, 30);
  write_pair(root / "portrait", "p", 30, 50);
  auto shape_of = [&](const char* orientation, AlignedOptions options) {
    return input_shape(AlignedDataset((root / orientation).string(), "train", options), 3);
  };
  using M = PreprocessMode;
  // load 40, crop 20. Landscape 50x30, portrait 30x50 (width x height):
  // resize_and_crop: 40x40, then a 20x20 crop.
  CHECK(shape_of("landscape", options_for(M::ResizeAndCrop, 40, 20)) == Shape{3, 20, 20});
  // crop: a 20x20 window of the half as it is.
  CHECK(shape_of("portrait", options_for(M::Crop, 0, 20)) == Shape{3, 20, 20});
  // scale_width: 40 x int(max(40 * 30 / 50 = 24, 20)) = 40x24; portrait 40 x int(40 * 50 / 30 = 66.7) = 40x66.
  CHECK(shape_of("landscape", options_for(M::ScaleWidth, 40, 20)) == Shape{3, 24, 40});
  CHECK(shape_of("portrait", options_for(M::ScaleWidth, 40, 20)) == Shape{3, 66, 40});
  // max(..., crop): 40 * 30 / 50 = 24 is below a crop of 28, so 40x28.
  CHECK(shape_of("landscape", options_for(M::ScaleWidth, 40, 28)) == Shape{3, 28, 40});
  // scale_width_and_crop: 40x24, then 20x20.
  CHECK(shape_of("landscape", options_for(M::ScaleWidthAndCrop, 40, 20)) == Shape{3, 20, 20});
  // none: as the file.
  CHECK(shape_of("landscape", options_for(M::None, 0, 0)) == Shape{3, 30, 50});
  CHECK(shape_of("portrait", options_for(M::None, 0, 0)) == Shape{3, 50, 30});

  // Then each side is cut to the largest multiple of 8: 20 -> 16; 40x24 stays; 40x66 -> 40x64; 50x30 -> 48x24.
  CHECK(shape_of("landscape", options_for(M::ResizeAndCrop, 40, 20, 8)) == Shape{3, 16, 16});
  CHECK(shape_of("landscape", options_for(M::ScaleWidth, 40, 20, 8)) == Shape{3, 24, 40});
  CHECK(shape_of("portrait", options_for(M::ScaleWidth, 40, 20, 8)) == Shape{3, 64, 40});
  CHECK(shape_of("landscape", options_for(M::None, 0, 0, 8)) == Shape{3, 24, 48});
  CHECK(shape_of("portrait", options_for(M::None, 0, 0, 8)) == Shape{3, 48, 24});
}

TEST_CASE("aligned: input and target share the geometry in every mode", "[data][preprocess]") {
  const fs::path root = testing::fresh_folder("preprocess_same_geometry");
  write_pair(root, "same", 37, 23, 3, 0);  // B = A, so any difference is a geometry difference
  for (const char* name : {"resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"}) {
    const AlignedDataset dataset(root.string(), "train", options_for(parse_preprocess(name), 30, 16, 4));
    for (uint64_t seed = 0; seed < 6; ++seed) {
      INFO(name << ", seed " << seed);
      const Example example = dataset.get(0, seed);
      CHECK(example.input.to_vector() == example.target.to_vector());
    }
  }
}

TEST_CASE("aligned: the multiple window is centred, then flipped", "[data][preprocess]") {
  const fs::path root = testing::fresh_folder("preprocess_multiple");
  write_pair(root, "odd", 11, 7);
  const AlignedDataset dataset(root.string(), "train", options_for(PreprocessMode::None, 0, 0, 4));
  // 11x7 -> 8x4 at ((11 - 8) / 2, (7 - 4) / 2) = (1, 1).
  for (uint64_t seed = 0; seed < 8; ++seed) {
    const bool flip = draw_augmentation(seed, 0, 11, 7, 11, 7, true).flip;
    INFO("seed " << seed << (flip ? ", flipped" : ""));
    const Example example = dataset.get(0, seed);
    REQUIRE(example.input.shape() == Shape{3, 4, 8});
    CHECK(example.input.to_vector() == expected_window(1, 1, 8, 4, 3, 0, flip));
    CHECK(example.target.to_vector() == expected_window(1, 1, 8, 4, 3, 100, flip));
  }

  // crop: the random window of draw_augmentation (8x8 in 20x12), then its centred 6x6.
  write_pair(root / "crop", "wide", 20, 12);
  const AlignedDataset cropping((root / "crop").string(), "train", options_for(PreprocessMode::Crop, 0, 8, 3));
  for (uint64_t seed = 0; seed < 8; ++seed) {
    const Augmentation draw = draw_augmentation(seed, 0, 20, 12, 8, 8, true);
    INFO("seed " << seed << ": crop at (" << draw.crop_x << ", " << draw.crop_y << ")");
    CHECK(cropping.get(0, seed).input.to_vector() ==
          expected_window(draw.crop_x + 1, draw.crop_y + 1, 6, 6, 3, 0, draw.flip));
  }
}

TEST_CASE("aligned: a side below the multiple or the crop, or over the limit, names the file", "[data][preprocess]") {
  const fs::path root = testing::fresh_folder("preprocess_too_small");
  write_pair(root, "small", 6, 5);
  const std::string path = (root / "train" / "small.png").string();
  const AlignedDataset none(root.string(), "train", options_for(PreprocessMode::None, 0, 0, 8));
  require_error([&] { none.get(0, 0); },
                {"'" + path + "'", "6x5", "multiple of 8", "--preprocess resize_and_crop", "--num-downs"});
  // scale_width makes it 40x33 (40 * 5 / 6 = 33.3): enough for 32, not for 64.
  CHECK(input_shape(AlignedDataset(root.string(), "train", options_for(PreprocessMode::ScaleWidth, 40, 8, 32)), 0) ==
        Shape{3, 32, 32});
  const AlignedDataset scaled(root.string(), "train", options_for(PreprocessMode::ScaleWidth, 40, 8, 64));
  require_error([&] { scaled.get(0, 0); }, {"'" + path + "'", "40x33", "multiple of 64"});
  const AlignedDataset cropping(root.string(), "train", options_for(PreprocessMode::Crop, 0, 6));
  require_error([&] { cropping.get(0, 0); }, {"'" + path + "'", "6x5", "6x6 crop"});
  // resize_and_crop always reaches its crop.
  CHECK(input_shape(AlignedDataset(root.string(), "train", options_for(PreprocessMode::ResizeAndCrop, 10, 8, 8)), 1) ==
        Shape{3, 8, 8});

  // scale_width of a narrow, tall half to 8192 wide would be 8192 x 8192 * 200 / 10 = 163840 high.
  write_pair(root / "tall", "tall", 10, 200);
  const std::string tall = (root / "tall" / "train" / "tall.png").string();
  const AlignedDataset huge((root / "tall").string(), "train", options_for(PreprocessMode::ScaleWidth, 8192, 8));
  require_error([&] { huge.get(0, 0); }, {"'" + tall + "'", "8192x163840", "over 8192 pixels a side"});
}

TEST_CASE("aligned: options are checked as each mode uses them", "[data][preprocess]") {
  const fs::path root = testing::fresh_folder("preprocess_options");
  write_pair(root, "p", 4, 4);
  auto make = [&](AlignedOptions options) { AlignedDataset(root.string(), "train", options); };
  using M = PreprocessMode;
  CHECK_THROWS_WITH(make(options_for(M::ResizeAndCrop, 20, 24)), Catch::Contains("crop_size <= load_size"));
  CHECK_THROWS_WITH(make(options_for(M::ScaleWidthAndCrop, 20, 24)), Catch::Contains("crop_size <= load_size"));
  CHECK_THROWS_WITH(make(options_for(M::ScaleWidth, 0, 24)), Catch::Contains("load_size and crop_size"));
  CHECK_NOTHROW(make(options_for(M::ScaleWidth, 20, 24)));  // the height is at least the crop: taller than wide
  CHECK_NOTHROW(make(options_for(M::Crop, 0, 24)));         // crop ignores load_size
  CHECK_THROWS_WITH(make(options_for(M::Crop, 286, 0)), Catch::Contains("crop_size"));
  CHECK_NOTHROW(make(options_for(M::None, 0, 0, 256)));  // none ignores both
  CHECK_THROWS_WITH(make(options_for(M::ResizeAndCrop, 286, 256, 512)),
                    Catch::Contains("crop_size 256 is smaller than the size multiple 512"));
  CHECK_THROWS_WITH(make(options_for(M::None, 0, 0, 0)), Catch::Contains("size_multiple 0"));
  AlignedOptions five = options_for(M::None, 0, 0);
  five.output_channels = 5;
  CHECK_THROWS_WITH(make(five), Catch::Contains("output_channels 5 is not 1"));
}

TEST_CASE("aligned: channel counts per side, a grey PNG round trip", "[data][preprocess]") {
  const fs::path root = testing::fresh_folder("preprocess_channels");
  write_pair(root / "grey", "g", 6, 4, 1);
  AlignedOptions options = options_for(PreprocessMode::None, 0, 0);
  options.no_flip = true;
  options.input_channels = 1;
  options.output_channels = 1;
  const Example grey = AlignedDataset((root / "grey").string(), "train", options).get(0, 0);
  CHECK(grey.input.shape() == Shape{1, 4, 6});
  CHECK(grey.input.to_vector() == expected_window(0, 0, 6, 4, 1, 0, false));
  CHECK(grey.target.to_vector() == expected_window(0, 0, 6, 4, 1, 100, false));
  // The default, 3 channels, replicates the grey.
  options.output_channels = 3;
  const Example replicated = AlignedDataset((root / "grey").string(), "train", options).get(0, 0);
  CHECK(replicated.input.shape() == Shape{1, 4, 6});
  CHECK(replicated.target.shape() == Shape{3, 4, 6});
  const std::vector<float> plane = expected_window(0, 0, 6, 4, 1, 100, false);
  std::vector<float> three = plane;
  for (int c = 1; c < 3; ++c) three.insert(three.end(), plane.begin(), plane.end());
  CHECK(replicated.target.to_vector() == three);

  // input_channels goes with the input side: B for BtoA.
  write_pair(root / "colour", "c", 6, 4, 3);
  options.direction = Direction::BtoA;
  options.input_channels = 1;
  options.output_channels = 4;
  const AlignedDataset swapped((root / "colour").string(), "train", options);
  const Example example = swapped.get(0, 0);
  const Image both = load_image(swapped.files()[0]);
  const std::string path = swapped.files()[0];
  CHECK(example.input.to_vector() == image_to_tensor(to_channels(crop(both, 6, 0, 6, 4), 1, path), path, 127.5f, 1)
                                         .to_vector());
  REQUIRE(example.target.shape() == Shape{4, 4, 6});
  std::vector<float> rgba = expected_window(0, 0, 6, 4, 3, 0, false);
  rgba.insert(rgba.end(), 6 * 4, 1.0f);  // opaque alpha
  CHECK(example.target.to_vector() == rgba);
}

TEST_CASE("loader: examples of different sizes fail naming two files", "[data][preprocess][loader]") {
  const fs::path root = testing::fresh_folder("preprocess_mixed");
  write_pair(root, "a", 8, 8);
  write_pair(root, "b", 12, 8);
  auto dataset = std::make_shared<AlignedDataset>(root.string(), "train", options_for(PreprocessMode::None, 0, 0));
  DataLoader together(dataset, LoaderOptions{2, false, 0, 0, 1, false});
  together.start_epoch(0);
  require_error([&] { together.next(); }, {"'b'", "12x8", "'a'", "8x8", "--batch-size 1"});
  DataLoader one_by_one(dataset, LoaderOptions{1, false, 0, 0, 1, false});
  one_by_one.start_epoch(0);
  CHECK(one_by_one.next()->input.shape() == Shape{1, 3, 8, 8});
  CHECK(one_by_one.next()->input.shape() == Shape{1, 3, 8, 12});
}

TEST_CASE("facades through the other modes", "[data][preprocess][datasets]") {
  const std::string facades = testing::shared_data_root() + "/facades";
  if (!testing::have_shared_data(facades)) return;
  using M = PreprocessMode;
  // Each half is 256x256: scale_width to 300 gives 300x300; to 256 (already that wide) keeps it.
  CHECK(input_shape(AlignedDataset(facades, "val", options_for(M::ScaleWidthAndCrop, 300, 256, 256)), 1) ==
        Shape{3, 256, 256});
  CHECK(input_shape(AlignedDataset(facades, "val", options_for(M::ScaleWidth, 256, 256)), 1) == Shape{3, 256, 256});
  CHECK(input_shape(AlignedDataset(facades, "val", options_for(M::ScaleWidth, 200, 100)), 1) == Shape{3, 200, 200});
  CHECK(input_shape(AlignedDataset(facades, "val", options_for(M::Crop, 0, 128)), 1) == Shape{3, 128, 128});

  AlignedOptions grey = options_for(M::None, 0, 0, 64);
  grey.direction = Direction::BtoA;
  grey.input_channels = 1;
  auto dataset = std::make_shared<AlignedDataset>(facades, "val", grey);
  DataLoader loader(dataset, LoaderOptions{2, true, 0, 2, 2, false});
  loader.start_epoch(0);
  const std::optional<Batch> batch = loader.next();
  REQUIRE(batch.has_value());
  CHECK(batch->input.shape() == Shape{2, 1, 256, 256});
  CHECK(batch->target.shape() == Shape{2, 3, 256, 256});
}
