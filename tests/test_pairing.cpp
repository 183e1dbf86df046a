// Aligned pairs: side_by_side and channel widening pixel by pixel; combining
// A and B folders (round trip, split sub-folders) and its refusals, which
// must name the files and leave nothing written; the line art plan's splits.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include <pixgrad/core/error.h>
#include <pixgrad/data/pairing.h>
#include "scratch_folder.h"

using namespace pixgrad;
using namespace pixgrad::data;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// A width x height image whose every byte differs from its neighbours',
// offset by `seed` so that A and B differ too.
Image pattern(int width, int height, int channels, int seed) {
  Image image(width, height, channels);
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(seed + 7 * i);
  return image;
}

void save(const std::string& path, const Image& image) {
  fs::create_directories(fs::path(path).parent_path());
  save_png(path, image);
}

// `action` must throw one line containing every one of `parts`.
template <typename Action>
void require_error(Action action, const std::vector<std::string>& parts) {
  try {
    action();
    FAIL("no error");
  } catch (const Error& error) {
    const std::string message = error.what();
    CAPTURE(message);
    CHECK(message.find('\n') == std::string::npos);
    for (const std::string& part : parts) CHECK_THAT(message, Contains(part));
  }
}

}  // namespace

TEST_CASE("side_by_side puts the left image's rows before the right's", "[pairing]") {
  const Image left = pattern(2, 3, 3, 1), right = pattern(4, 3, 3, 100);
  const Image both = side_by_side(left, right);
  REQUIRE(both.width == 6);
  REQUIRE(both.height == 3);
  REQUIRE(both.channels == 3);
  for (int y = 0; y < 3; ++y)
    for (int c = 0; c < 3; ++c) {
      for (int x = 0; x < 2; ++x) CHECK(both.at(x, y, c) == left.at(x, y, c));
      for (int x = 0; x < 4; ++x) CHECK(both.at(2 + x, y, c) == right.at(x, y, c));
    }
  CHECK_THROWS_AS(side_by_side(left, pattern(2, 4, 3, 0)), Error);
  CHECK_THROWS_AS(side_by_side(left, pattern(2, 3, 1, 0)), Error);
}

TEST_CASE("widen_channels replicates grey and adds an opaque alpha", "[pairing]") {
  Image grey(1, 1, 1);
  grey.pixels = {9};
  CHECK(widen_channels(grey, 3).pixels == std::vector<uint8_t>{9, 9, 9});
  CHECK(widen_channels(grey, 4).pixels == std::vector<uint8_t>{9, 9, 9, 255});
  CHECK(widen_channels(grey, 2).pixels == std::vector<uint8_t>{9, 255});
  Image grey_alpha(1, 1, 2);
  grey_alpha.pixels = {9, 40};
  CHECK(widen_channels(grey_alpha, 4).pixels == std::vector<uint8_t>{9, 9, 9, 40});
  CHECK(widen_channels(grey_alpha, 3).pixels == std::vector<uint8_t>{9, 9, 9});
  Image rgb(1, 1, 3);
  rgb.pixels = {1, 2, 3};
  CHECK(widen_channels(rgb, 4).pixels == std::vector<uint8_t>{1, 2, 3, 255});
  CHECK_THROWS_AS(widen_channels(rgb, 1), Error);
}

TEST_CASE("combine_folders writes A | B per stem, widening grey to RGB", "[pairing]") {
  const testing::ScratchFolder scratch("pairing");
  const Image a = pattern(4, 3, 3, 1), b = pattern(4, 3, 1, 50);
  save(scratch.at("A/x.png"), a);
  save(scratch.at("B/x.png"), b);
  save(scratch.at("B/unused.png"), b);  // B may hold more than A needs
  const std::vector<PairTask> written =
      combine_folders(scratch.at("A"), scratch.at("B"), scratch.at("out"), false);
  REQUIRE(written.size() == 1);
  REQUIRE(written[0].output == scratch.at("out/x.png"));
  const Image both = load_image(scratch.at("out/x.png"));
  REQUIRE(both.width == 8);
  REQUIRE(both.height == 3);
  REQUIRE(both.channels == 3);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c) {
        CHECK(both.at(x, y, c) == a.at(x, y, c));
        CHECK(both.at(4 + x, y, c) == b.at(x, y, 0));
      }

  // Again: refused without --overwrite, then replaced with it.
  require_error([&] { combine_folders(scratch.at("A"), scratch.at("B"), scratch.at("out"), false); },
                {"exist already", scratch.at("out/x.png"), "--overwrite"});
  CHECK(combine_folders(scratch.at("A"), scratch.at("B"), scratch.at("out"), true).size() == 1);
}

TEST_CASE("combine_folders pairs split sub-folders", "[pairing]") {
  const testing::ScratchFolder scratch("pairing");
  for (const char* split : {"train", "test"}) {
    save(scratch.at(std::string("A/") + split + "/1.png"), pattern(2, 2, 3, 1));
    save(scratch.at(std::string("B/") + split + "/1.png"), pattern(2, 2, 3, 2));
  }
  combine_folders(scratch.at("A"), scratch.at("B"), scratch.at("out"), false);
  CHECK(load_image(scratch.at("out/train/1.png")).width == 4);
  CHECK(load_image(scratch.at("out/test/1.png")).width == 4);

  fs::create_directories(scratch.at("A/val"));
  require_error([&] { plan_combine(scratch.at("A"), scratch.at("B"), scratch.at("out2"), false); },
                {"lacks the sub-folder", "'val'", scratch.at("B")});
}

TEST_CASE("combine_folders refuses missing partners and writes nothing", "[pairing]") {
  const testing::ScratchFolder scratch("pairing");
  for (const char* name : {"a", "b", "c", "d", "e"}) save(scratch.at(std::string("A/") + name + ".png"), pattern(2, 2, 3, 1));
  save(scratch.at("B/c.jpeg.png"), pattern(2, 2, 3, 1));  // stem "c.jpeg": not c's partner
  save(scratch.at("B/c.png"), pattern(2, 2, 3, 1));
  require_error([&] { combine_folders(scratch.at("A"), scratch.at("B"), scratch.at("out"), false); },
                {"4 A image(s) have no B image", "looked for in '" + scratch.at("B") + "'", scratch.at("A/a.png"), scratch.at("A/b.png"),
                 scratch.at("A/d.png"), "and 1 more", "nothing was written"});
  CHECK(!fs::exists(scratch.at("out")));
}

TEST_CASE("combine_folders refuses A and B of different sizes and writes nothing", "[pairing]") {
  const testing::ScratchFolder scratch("pairing");
  save(scratch.at("A/1.png"), pattern(4, 4, 3, 1));
  save(scratch.at("B/1.png"), pattern(4, 4, 3, 1));
  save(scratch.at("A/2.png"), pattern(4, 3, 3, 1));
  save(scratch.at("B/2.png"), pattern(5, 3, 3, 1));
  require_error([&] { combine_folders(scratch.at("A"), scratch.at("B"), scratch.at("out"), false); },
                {"1 pair(s) cannot be combined", scratch.at("A/2.png"), "4x3", scratch.at("B/2.png"), "5x3"});
  CHECK(!fs::exists(scratch.at("out")));
}

TEST_CASE("a pair too wide to train on is refused naming its files, and line art says to give --size",
          "[pairing]") {
  const testing::ScratchFolder scratch("pairing");
  save(scratch.at("A/wide.png"), pattern(4097, 1, 1, 1));
  save(scratch.at("B/wide.png"), pattern(4097, 1, 1, 2));
  require_error([&] { combine_folders(scratch.at("A"), scratch.at("B"), scratch.at("out"), false); },
                {scratch.at("A/wide.png"), scratch.at("B/wide.png"), "4097x1", "8194 pixels wide",
                 "at most 4096 wide"});
  CHECK(!fs::exists(scratch.at("out")));
  LineArtPairOptions own_size;
  own_size.size = 0;  // the photo's own size
  require_error([&] { line_art_pair(pattern(4097, 2, 3, 1), own_size); }, {"4097x2", "give --size"});
  CHECK_NOTHROW(line_art_pair(pattern(4096, 2, 3, 1), own_size));
  LineArtPairOptions too_large;
  too_large.size = 4097;  // its pair could never be trained on: refused before any work
  require_error([&] { line_art_pair(pattern(2, 2, 3, 1), too_large); }, {"size must be in [0, 4096]", "4097"});
}

TEST_CASE("combine_folders refuses an output folder inside an input folder", "[pairing]") {
  const testing::ScratchFolder scratch("pairing");
  save(scratch.at("A/1.png"), pattern(2, 2, 3, 1));
  save(scratch.at("B/1.png"), pattern(2, 2, 3, 1));
  require_error([&] { plan_combine(scratch.at("A"), scratch.at("B"), scratch.at("B/out"), false); },
                {"inside the input folder", scratch.at("B")});
  require_error([&] { plan_combine(scratch.at("A"), scratch.at("B"), scratch.at("A"), true); },
                {"inside the input folder", scratch.at("A")});
  require_error([&] { plan_combine(scratch.at("none"), scratch.at("B"), scratch.at("out"), false); },
                {"no such folder", scratch.at("none")});
}

TEST_CASE("plan_line_art filters by extension and puts the last photos in test/", "[pairing]") {
  const testing::ScratchFolder scratch("pairing");
  for (int i = 1; i <= 6; ++i) {
    const std::string stem = scratch.at("photos/p" + std::to_string(i));
    save(stem + ".jpg", pattern(2, 2, 3, i));  // a PNG named .jpg: the plan reads names only
    save(stem + ".png", pattern(2, 2, 1, i));
  }
  // Both kinds share stems: refused, pointing at --extension.
  require_error([&] { plan_line_art(scratch.at("photos"), {}, scratch.at("out"), 0, false); },
                {"p1.jpg", "p1.png", "--extension"});
  // Default: a tenth of 6, rounded, is 1.
  std::vector<PairTask> tasks = plan_line_art(scratch.at("photos"), {".JPG"}, scratch.at("out"), -1, false);
  REQUIRE(tasks.size() == 6);
  for (int i = 0; i < 6; ++i) {
    CHECK(tasks[i].a == scratch.at("photos/p" + std::to_string(i + 1) + ".jpg"));
    CHECK(tasks[i].output == scratch.at(std::string(i < 5 ? "out/train/" : "out/test/") + "p" + std::to_string(i + 1) + ".png"));
  }
  tasks = plan_line_art(scratch.at("photos"), {"jpg"}, scratch.at("out"), 4, false);
  CHECK(tasks[1].output == scratch.at("out/train/p2.png"));
  CHECK(tasks[2].output == scratch.at("out/test/p3.png"));
  require_error([&] { plan_line_art(scratch.at("photos"), {"jpg"}, scratch.at("out"), 7, false); },
                {"--test-count 7", "6 photos"});
  require_error([&] { plan_line_art(scratch.at("photos"), {"gif"}, scratch.at("out"), 0, false); },
                {"no .gif files", scratch.at("photos")});

  LineArtPairOptions options;
  options.size = 8;
  const Image pair = line_art_pair(pattern(10, 6, 1, 3), options);
  CHECK(pair.width == 16);
  CHECK(pair.height == 8);
  CHECK(pair.channels == 3);
}
