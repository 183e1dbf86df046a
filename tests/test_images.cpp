// Image decoding, encoding and geometry: bad files are refused with one line
// naming the file; resize/crop/flip/pad and channel conversion agree with
// hand-computed values.
#include <catch2/catch.hpp>

#include <array>

#include "test_paths.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <pixgrad/core/error.h>
#include <pixgrad/data/datasets.h>
#include <pixgrad/data/image.h>
#include <pixgrad/training/preview.h>

using namespace pixgrad;
using namespace pixgrad::data;
using namespace pixgrad::training;
namespace fs = std::filesystem;

namespace {

const std::string kData = pixgrad::testing::shared_data_root();

// A fresh directory under the system temp dir, removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("pixgrad_test_images_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs `action`, which must throw a pixgrad::Error of one line naming `path` and containing `detail`.
template <typename Action>
void require_image_error(Action action, const std::string& path, const std::string& detail) {
  try {
    action();
    FAIL("no error for '" << path << "' (expected: " << detail << ")");
  } catch (const Error& error) {
    const std::string message = error.what();
    INFO(message);
    CHECK(message.find("'" + path + "'") != std::string::npos);
    CHECK(message.find(detail) != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
  }
}

Image from_values(int width, int height, int channels, std::vector<uint8_t> values) {
  Image image(width, height, channels);
  REQUIRE(values.size() == image.pixels.size());
  image.pixels = std::move(values);
  return image;
}

// CRC-32 (ISO 3309, reflected polynomial 0xEDB88320), bit by bit.
uint32_t crc32(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (const char byte : bytes) {
    crc ^= static_cast<uint8_t>(byte);
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1u) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
  }
  return ~crc;
}

std::string u32_be(uint32_t v) {
  std::string out;
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
  return out;
}

// A PNG chunk with its length and CRC.
std::string png_chunk(const std::string& type, const std::string& data) {
  return u32_be(static_cast<uint32_t>(data.size())) + type + data + u32_be(crc32(type + data));
}

// A PNG of just an IHDR and an IEND chunk: enough to read the header.
std::string png_header(uint32_t width, uint32_t height, uint8_t bit_depth, uint8_t colour_type) {
  const std::string ihdr = u32_be(width) + u32_be(height) +
                           std::string{static_cast<char>(bit_depth), static_cast<char>(colour_type), 0, 0, 0};
  return "\x89PNG\r\n\x1a\n" + png_chunk("IHDR", ihdr) + png_chunk("IEND", "");
}

}  // namespace

TEST_CASE("load_image refuses missing, empty, foreign and corrupt files", "[images]") {
  TempDir dir;
  const std::string missing = dir.file("missing.jpg");
  require_image_error([&] { load_image(missing); }, missing, "no such file");
  require_image_error([&] { load_image(dir.path.string()); }, dir.path.string(), "directory");

  const std::string empty = dir.file("empty.png");
  write_bytes(empty, "");
  require_image_error([&] { load_image(empty); }, empty, "empty");

  const std::string noise = dir.file("noise.jpg");
  std::string random_bytes;
  for (int i = 0; i < 4096; ++i) random_bytes.push_back(static_cast<char>((i * 7919 + 13) % 251));
  write_bytes(noise, random_bytes);
  require_image_error([&] { load_image(noise); }, noise, "not a JPEG or PNG");

  const std::string gif = dir.file("image.gif");
  write_bytes(gif, std::string("GIF89a\x02\x00\x02\x00\x80\x00\x00", 13) + std::string(64, '\0'));
  require_image_error([&] { load_image(gif); }, gif, "not a JPEG or PNG");
  const std::string bmp = dir.file("image.bmp");
  write_bytes(bmp, "BM" + std::string(128, '\0'));
  require_image_error([&] { load_image(bmp); }, bmp, "not a JPEG or PNG");

  // A JPEG signature followed by garbage fails in stb, and its reason is passed on.
  const std::string fake_jpeg = dir.file("fake.jpg");
  write_bytes(fake_jpeg, "\xFF\xD8\xFF" + random_bytes);
  require_image_error([&] { load_image(fake_jpeg); }, fake_jpeg, "corrupt");
}

TEST_CASE("load_image refuses truncated JPEG and PNG files", "[images]") {
  const std::string photo = kData + "/facades/val/1.jpg";
  const std::string labels = kData + "/cmp_facade_base/cmp_b0001.png";
  if (!pixgrad::testing::have_shared_data(photo) || !pixgrad::testing::have_shared_data(labels)) return;
  TempDir dir;
  for (const std::string& source : {photo, labels}) {
    const std::string bytes = read_bytes(source);
    const bool png = source == labels;
    for (size_t kept : {bytes.size() / 20, bytes.size() / 2, bytes.size() - 2}) {
      const std::string cut = dir.file(png ? "cut.png" : "cut.jpg");
      write_bytes(cut, bytes.substr(0, kept));
      INFO(source << " cut to " << kept << " bytes");
      require_image_error([&] { load_image(cut); }, cut, png ? "truncated PNG" : "JPEG data");
    }
  }
}

TEST_CASE("load_image checks the size before decoding", "[images]") {
  TempDir dir;
  const std::string wide = dir.file("wide.png");
  write_bytes(wide, png_header(100000, 10, 8, 2));
  require_image_error([&] { load_image(wide); }, wide, "8192");

  const std::string huge = dir.file("huge.jpg");
  write_bytes(huge, "\xFF\xD8\xFF");
  fs::resize_file(huge, kMaxImageFileBytes + 1);  // sparse: costs no disk
  require_image_error([&] { load_image(huge); }, huge, "over the limit");
}

TEST_CASE("save_png round-trips 1, 2, 3 and 4 channels atomically", "[images]") {
  TempDir dir;
  for (int channels = 1; channels <= 4; ++channels) {
    Image image(7, 5, channels);
    for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(i * 37 % 256);
    const std::string path = dir.file("round" + std::to_string(channels) + ".png");
    save_png(path, image);
    CHECK_FALSE(fs::exists(path + ".tmp"));
    const Image loaded = load_image(path);
    CHECK(loaded.width == 7);
    CHECK(loaded.height == 5);
    CHECK(loaded.channels == channels);
    CHECK(loaded.pixels == image.pixels);
  }
  const std::string unwritable = dir.file("no/such/dir/out.png");
  require_image_error([&] { save_png(unwritable, Image(2, 2, 3)); }, unwritable, "cannot write");
}

TEST_CASE("label PNGs are read as raw values", "[images]") {
  TempDir dir;
  const std::string grey = dir.file("grey.png");
  save_png(grey, from_values(3, 1, 1, {1, 7, 12}));
  CHECK(load_label_image(grey).pixels == std::vector<uint8_t>{1, 7, 12});

  const std::string rgb = dir.file("rgb.png");
  save_png(rgb, Image(2, 2, 3));
  require_image_error([&] { load_label_image(rgb); }, rgb, "palette-indexed or 8-bit greyscale");
  const std::string jpeg_name = dir.file("label.jpg");
  write_bytes(jpeg_name, "\xFF\xD8\xFF\xE0");
  require_image_error([&] { load_label_image(jpeg_name); }, jpeg_name, "must be a PNG");

  // A palette PNG: the indices come back, and map through the file's palette to what stb decodes as RGB.
  const std::string palette = kData + "/cmp_facade_base/cmp_b0001.png";
  if (!pixgrad::testing::have_shared_data(palette)) return;
  const Image indices = load_label_image(palette);
  const Image colours = load_image(palette);
  REQUIRE(colours.channels == 3);
  REQUIRE(indices.width == colours.width);
  REQUIRE(indices.height == colours.height);
  int mismatches = 0;
  for (size_t i = 0; i < indices.pixels.size(); ++i) {
    const int value = indices.pixels[i];
    if (value < 1 || value > 12) {
      ++mismatches;
      continue;
    }
    const uint8_t* expected = label_colour(value - 1);  // the preview palette is the CMP palette
    for (int c = 0; c < 3; ++c) mismatches += colours.pixels[3 * i + c] != expected[c];
  }
  CHECK(mismatches == 0);
}

TEST_CASE("bad label maps and bad A|B images name the file", "[images]") {
  TempDir dir;
  // CmpDataset keys on names, and the decoder on content: a PNG named .jpg stands in for the photo.
  save_png(dir.file("cmp_b0001.jpg"), Image(4, 3, 3, 128));
  for (uint8_t bad : {uint8_t{0}, uint8_t{13}}) {
    Image labels(4, 3, 1, 5);
    labels.at(2, 1, 0) = bad;
    save_png(dir.file("cmp_b0001.png"), labels);
    const CmpDataset dataset(dir.path.string(), "all", CmpOptions{4, 2, false, 0, 0, {}});
    require_image_error([&] { dataset.get(0, 0); }, dir.file("cmp_b0001.png"),
                        "label value " + std::to_string(bad) + " at (2, 1)");
  }
  save_png(dir.file("cmp_b0001.png"), Image(5, 3, 1, 5));
  const CmpDataset mismatched(dir.path.string(), "all", CmpOptions{4, 2, false, 0, 0, {}});
  require_image_error([&] { mismatched.get(0, 0); }, dir.file("cmp_b0001.png"), "differs from its photo");

  fs::create_directories(dir.path / "train");
  const std::string odd = (dir.path / "train" / "odd.png").string();
  save_png(odd, Image(513, 4, 3));
  const AlignedDataset aligned(dir.path.string(), "train", AlignedOptions{Direction::AtoB, 8, 8, true, {}});
  require_image_error([&] { aligned.get(0, 0); }, odd, "width 513 is odd; expected A|B side by side");
  CHECK_THROWS_WITH(AlignedDataset(dir.path.string(), "val"), Catch::Contains("is not a directory"));
  fs::create_directories(dir.path / "empty");
  CHECK_THROWS_WITH(AlignedDataset(dir.path.string(), "empty"), Catch::Contains("no .jpg, .jpeg or .png files"));
}

TEST_CASE("bilinear resize uses half-pixel centres and averages when shrinking", "[images]") {
  // Enlarging equals PyTorch's interpolate(mode="bilinear", align_corners=False).
  CHECK(resize_bilinear(from_values(2, 1, 1, {0, 100}), 4, 1).pixels == std::vector<uint8_t>{0, 25, 75, 100});
  // Shrinking 2x: a triangle filter of radius 2 (PIL's BILINEAR), weights .75/.75/.25 normalised.
  CHECK(resize_bilinear(from_values(4, 1, 1, {0, 100, 200, 255}), 2, 1).pixels == std::vector<uint8_t>{71, 209});
  // Vertical direction and channels are independent.
  const Image column = resize_bilinear(from_values(1, 2, 2, {0, 200, 100, 0}), 1, 4);
  CHECK(column.pixels == std::vector<uint8_t>{0, 200, 25, 150, 75, 50, 100, 0});
  Image ramp(9, 6, 3);
  for (size_t i = 0; i < ramp.pixels.size(); ++i) ramp.pixels[i] = static_cast<uint8_t>(i * 13 % 256);
  CHECK(resize_bilinear(ramp, 9, 6).pixels == ramp.pixels);
  const Image flat = resize_bilinear(Image(7, 5, 3, 77), 13, 3);
  CHECK(flat.pixels == std::vector<uint8_t>(13 * 3 * 3, 77));
  CHECK_THROWS_AS(resize_bilinear(ramp, 0, 4), Error);
}

TEST_CASE("nearest resize keeps values and picks half-pixel centres", "[images]") {
  CHECK(resize_nearest(from_values(3, 1, 1, {10, 20, 30}), 6, 1).pixels ==
        std::vector<uint8_t>{10, 10, 20, 20, 30, 30});
  CHECK(resize_nearest(from_values(6, 1, 1, {0, 1, 2, 3, 4, 5}), 3, 1).pixels == std::vector<uint8_t>{1, 3, 5});
  CHECK(resize_nearest(from_values(1, 2, 1, {4, 9}), 1, 3).pixels == std::vector<uint8_t>{4, 9, 9});
}

TEST_CASE("crop, flip and to_rgb move the right pixels", "[images]") {
  std::vector<uint8_t> values(12);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint8_t>(i);
  const Image grid = from_values(4, 3, 1, values);
  const Image window = crop(grid, 1, 1, 2, 2);
  CHECK(window.pixels == std::vector<uint8_t>{5, 6, 9, 10});
  CHECK_THROWS_WITH(crop(grid, 3, 0, 2, 2), Catch::Contains("does not fit a 4x3 image"));

  CHECK(flip_horizontal(from_values(3, 1, 2, {1, 2, 3, 4, 5, 6})).pixels == std::vector<uint8_t>{5, 6, 3, 4, 1, 2});
  CHECK(flip_horizontal(grid).at(0, 2, 0) == 11);

  CHECK(to_rgb(from_values(1, 1, 1, {9})).pixels == std::vector<uint8_t>{9, 9, 9});
  CHECK(to_rgb(from_values(1, 1, 2, {9, 200})).pixels == std::vector<uint8_t>{9, 9, 9});
  CHECK(to_rgb(from_values(1, 1, 4, {1, 2, 3, 4})).pixels == std::vector<uint8_t>{1, 2, 3});
}

TEST_CASE("to_channels converts with PIL's luma rounding and opaque alpha", "[images][data]") {
  // Red, green, blue, a mixed colour and (1, 1, 0), whose luma 0.886 only rounds up with the + 0x8000:
  // (255 * 19595 + 0x8000) >> 16 = 76, (255 * 38470 + 0x8000) >> 16 = 150, (255 * 7471 + 0x8000) >> 16 = 29,
  // (10 * 19595 + 20 * 38470 + 30 * 7471 + 0x8000) >> 16 = 1222248 >> 16 = 18, (19595 + 38470 + 0x8000) >> 16 = 1.
  const Image colours = from_values(5, 1, 3, {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 1, 1, 0});
  CHECK(to_channels(colours, 1, "c.png").pixels == std::vector<uint8_t>{76, 150, 29, 18, 1});
  CHECK(to_channels(colours, 2, "c.png").pixels == std::vector<uint8_t>{76, 255, 150, 255, 29, 255, 18, 255, 1, 255});
  CHECK(to_channels(from_values(1, 1, 3, {255, 255, 255}), 1, "w.png").pixels == std::vector<uint8_t>{255});

  const Image rgba = from_values(1, 1, 4, {10, 20, 30, 40});
  CHECK(to_channels(rgba, 1, "a.png").pixels == std::vector<uint8_t>{18});
  CHECK(to_channels(rgba, 2, "a.png").pixels == std::vector<uint8_t>{18, 40});
  CHECK(to_channels(rgba, 3, "a.png").pixels == std::vector<uint8_t>{10, 20, 30});
  CHECK(to_channels(rgba, 4, "a.png").pixels == rgba.pixels);
  CHECK(to_channels(from_values(1, 1, 3, {10, 20, 30}), 4, "c.png").pixels == std::vector<uint8_t>{10, 20, 30, 255});

  const Image grey = from_values(2, 1, 1, {9, 0});
  CHECK(to_channels(grey, 2, "g.png").pixels == std::vector<uint8_t>{9, 255, 0, 255});
  CHECK(to_channels(grey, 3, "g.png").pixels == std::vector<uint8_t>{9, 9, 9, 0, 0, 0});
  CHECK(to_channels(grey, 4, "g.png").pixels == std::vector<uint8_t>{9, 9, 9, 255, 0, 0, 0, 255});
  const Image grey_alpha = from_values(1, 1, 2, {9, 200});
  CHECK(to_channels(grey_alpha, 1, "ga.png").pixels == std::vector<uint8_t>{9});
  CHECK(to_channels(grey_alpha, 4, "ga.png").pixels == std::vector<uint8_t>{9, 9, 9, 200});
  // Grey made colour and back is unchanged: the luma weights sum to 65536.
  Image ramp(256, 1, 1);
  for (int x = 0; x < 256; ++x) ramp.at(x, 0, 0) = static_cast<uint8_t>(x);
  CHECK(to_channels(to_channels(ramp, 3, "ramp"), 1, "ramp").pixels == ramp.pixels);

  require_image_error([&] { to_channels(grey, 5, "five.png"); }, "five.png", "cannot convert to 5 channels");
  require_image_error([&] { to_channels(grey, 0, "zero.png"); }, "zero.png", "cannot convert to 0 channels");

  const Tensor one = image_to_tensor(colours, "c.png", 127.5f, 1);
  CHECK(one.shape() == Shape{1, 1, 5});
  CHECK(one.to_vector() == std::vector<float>{76 / 127.5f - 1, 150 / 127.5f - 1, 29 / 127.5f - 1, 18 / 127.5f - 1,
                                              1 / 127.5f - 1});
  const Tensor four = image_to_tensor(grey, "g.png", 127.5f, 4);
  CHECK(four.shape() == Shape{4, 1, 2});
  CHECK(four.to_vector() == std::vector<float>{9 / 127.5f - 1, -1, 9 / 127.5f - 1, -1, 9 / 127.5f - 1, -1, 1, 1});
}

TEST_CASE("resize, crop and flip treat 1, 2 and 4 channels as independent planes", "[images][data]") {
  // Each channel of a multi-channel image must come out as that channel alone would.
  auto plane = [](const Image& image, int channel) {
    Image out(image.width, image.height, 1);
    for (size_t i = 0; i < out.pixels.size(); ++i) out.pixels[i] = image.pixels[i * image.channels + channel];
    return out;
  };
  for (int channels : {1, 2, 4}) {
    Image image(9, 7, channels);
    for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>((i * 53 + i / 7) % 256);
    const std::vector<std::pair<const char*, Image (*)(const Image&)>> operations = {
        {"bilinear up", [](const Image& x) { return resize_bilinear(x, 13, 10); }},
        {"bilinear down", [](const Image& x) { return resize_bilinear(x, 4, 3); }},
        {"bicubic up", [](const Image& x) { return resize_bicubic(x, 13, 10); }},
        {"bicubic down", [](const Image& x) { return resize_bicubic(x, 4, 3); }},
        {"nearest", [](const Image& x) { return resize_nearest(x, 5, 11); }},
        {"crop", [](const Image& x) { return crop(x, 2, 1, 5, 4); }},
        {"flip", flip_horizontal},
        {"pad", [](const Image& x) { return pad_to_size(x, 12, 20); }},
    };
    for (const auto& [name, operation] : operations) {
      INFO(name << " on " << channels << " channels");
      const Image whole = operation(image);
      REQUIRE(whole.channels == channels);
      for (int c = 0; c < channels; ++c) CHECK(plane(whole, c).pixels == operation(plane(image, c)).pixels);
    }
  }
  CHECK(resize_bilinear(from_values(2, 1, 2, {0, 200, 100, 0}), 4, 1).pixels ==
        std::vector<uint8_t>{0, 200, 25, 150, 75, 50, 100, 0});
}

TEST_CASE("pad_to_size mirrors without repeating the edge, or repeats it when too small", "[images][data]") {
  // 1 2 3
  // 4 5 6
  const Image image = from_values(3, 2, 1, {1, 2, 3, 4, 5, 6});
  // 2 columns added <= 3 - 1: mirrored about column 2; 1 row added <= 2 - 1: mirrored about row 1.
  CHECK(pad_to_size(image, 5, 3).pixels == std::vector<uint8_t>{1, 2, 3, 2, 1,  //
                                                                4, 5, 6, 5, 4,  //
                                                                1, 2, 3, 2, 1});
  // 3 columns and 2 rows are more than a mirror can supply: the edge pixel repeats.
  CHECK(pad_to_size(image, 6, 4).pixels == std::vector<uint8_t>{1, 2, 3, 3, 3, 3,  //
                                                                4, 5, 6, 6, 6, 6,  //
                                                                4, 5, 6, 6, 6, 6,  //
                                                                4, 5, 6, 6, 6, 6});
  // Each side decides for itself: columns repeat, the row mirrors.
  CHECK(pad_to_size(image, 6, 3).pixels == std::vector<uint8_t>{1, 2, 3, 3, 3, 3,  //
                                                                4, 5, 6, 6, 6, 6,  //
                                                                1, 2, 3, 3, 3, 3});
  CHECK(pad_to_size(image, 3, 2).pixels == image.pixels);
  CHECK(pad_to_size(from_values(1, 1, 1, {7}), 3, 2).pixels == std::vector<uint8_t>(6, 7));
  // Channels move with their pixel.
  CHECK(pad_to_size(from_values(2, 1, 2, {1, 10, 2, 20}), 3, 1).pixels == std::vector<uint8_t>{1, 10, 2, 20, 1, 10});
  CHECK_THROWS_WITH(pad_to_size(image, 2, 4), Catch::Contains("cannot pad a 3x2 image to 2x4"));

  CHECK(round_up_to_multiple(250, 256) == 256);
  CHECK(round_up_to_multiple(256, 256) == 256);
  CHECK(round_up_to_multiple(257, 256) == 512);
  CHECK(round_up_to_multiple(0, 8) == 0);
  CHECK(round_up_to_multiple(5, 1) == 5);
  CHECK_THROWS_AS(round_up_to_multiple(5, 0), Error);
  CHECK_THROWS_AS(round_up_to_multiple(-1, 4), Error);
}

TEST_CASE("tensors become images with clamping and label colours", "[images]") {
  const Tensor grey = Tensor::from_vector(std::vector<float>{-1.0f, 0.0f, 1.0f, 3.0f, -7.0f, NAN}, {1, 2, 3});
  CHECK(tensor_to_image(grey).pixels == std::vector<uint8_t>{0, 128, 255, 255, 0, 0});
  const Image rgb = tensor_to_image(Tensor::from_vector(std::vector<float>{-1, 1, 0, 0, 1, -1}, {1, 3, 1, 2}));
  CHECK(rgb.channels == 3);
  CHECK(rgb.pixels == std::vector<uint8_t>{0, 128, 255, 255, 128, 0});

  std::vector<float> one_hot(12 * 2, 0.0f);
  one_hot[4 * 2 + 0] = 1.0f;   // pixel 0: class 4
  one_hot[11 * 2 + 1] = 1.0f;  // pixel 1: class 11
  const Image colours = tensor_to_image(Tensor::from_vector(one_hot, {12, 1, 2}));
  CHECK(std::equal(colours.pixels.begin(), colours.pixels.begin() + 3, label_colour(4)));
  CHECK(std::equal(colours.pixels.begin() + 3, colours.pixels.end(), label_colour(11)));
  CHECK_THROWS_AS(label_map_to_color(Tensor::zeros({13, 2, 2})), Error);

  // Four channels are RGBA, not a 4-class label map; in a grid alpha covers the black canvas.
  const Image rgba = tensor_to_image(Tensor::from_vector(std::vector<float>{1, 1, -1, 0}, {4, 1, 1}));
  CHECK(rgba.channels == 4);
  CHECK(rgba.pixels == std::vector<uint8_t>{255, 255, 0, 128});
  const Image grid = make_grid({{rgba}}, 0);
  CHECK(grid.pixels == std::vector<uint8_t>{128, 128, 0});
  const Image grey_alpha = tensor_to_image(Tensor::from_vector(std::vector<float>{0, 1}, {2, 1, 1}));
  CHECK(grey_alpha.pixels == std::vector<uint8_t>{128, 255});
}

TEST_CASE("make_grid lays out padded cells", "[images]") {
  const Image red = from_values(1, 1, 3, {255, 0, 0});
  const Image grey(2, 2, 1, 90);
  const Image grid = make_grid({{grey, red, grey}, {red}}, 1);
  CHECK(grid.width == 3 * (2 + 1) + 1);
  CHECK(grid.height == 2 * (2 + 1) + 1);
  CHECK(grid.channels == 3);
  CHECK(grid.at(0, 0, 0) == 0);    // padding
  CHECK(grid.at(1, 1, 1) == 90);   // first cell, grey replicated
  CHECK(grid.at(4, 1, 0) == 255);  // the 1x1 image in the second cell (centred, rounding down)
  CHECK(grid.at(5, 2, 0) == 0);
  CHECK(grid.at(1, 4, 0) == 255);  // second row, first cell
  CHECK_THROWS_AS(make_grid({}, 1), Error);
}

TEST_CASE("plot_losses draws each series in its own panel, on its own scale, against the iteration", "[images]") {
  // An adversarial loss falling from 2.5 to 0.5 and an L1 term around 0.1-0.3:
  // on one shared axis the L1 curve would span a tenth of the height.
  Series adversarial{"G adv", {}, {}}, l1{"G L1", {}, {}}, empty{"empty", {}, {}};
  for (int i = 0; i < 500; ++i) {
    adversarial.x.push_back(100.0 * (i + 1));
    adversarial.y.push_back(0.5 + 2.0 * std::exp(-i / 100.0));
    l1.x.push_back(100.0 * (i + 1));
    l1.y.push_back(i == 250 ? NAN : 0.3 - 0.2 * i / 500.0);
  }
  const int width = 640, height = 480;
  const Image plot = plot_losses({adversarial, l1, empty}, width, height);
  CHECK(plot.width == width);
  CHECK(plot.height == height);
  CHECK(plot.channels == 3);
  // Rows and columns holding a series' colour (its line and its swatch).
  auto extent = [&](uint8_t r, uint8_t g, uint8_t b) {
    int top = height, bottom = -1, right = -1, count = 0;
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x)
        if (plot.at(x, y, 0) == r && plot.at(x, y, 1) == g && plot.at(x, y, 2) == b) {
          top = std::min(top, y);
          bottom = std::max(bottom, y);
          right = std::max(right, x);
          ++count;
        }
    return std::array<int, 4>{top, bottom, right, count};
  };
  const auto first = extent(31, 119, 180), second = extent(214, 39, 40);
  CHECK(first[3] > 300);
  CHECK(second[3] > 300);
  const int panel = height / 3;
  CHECK(first[1] < panel);                         // the first panel holds the first series ...
  CHECK(second[0] > first[1]);                     // ... the second the second
  CHECK(second[1] < 2 * panel);
  CHECK(second[1] - second[0] > panel * 6 / 10);   // spanning most of its panel's height
  CHECK(second[2] > width * 9 / 10);               // the last iteration at the right edge
  CHECK_THROWS_AS(plot_losses({}, 640, 480), Error);
  CHECK_THROWS_AS(plot_losses({adversarial}, 10, 10), Error);
  CHECK_THROWS_AS(plot_losses({Series{"bad", {1, 2}, {1}}}, 640, 480), Error);
}
