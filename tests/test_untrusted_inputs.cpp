// Files and values from outside treated as hostile: a FIFO where a file is
// expected, safetensors headers that are huge, padded with a NUL or built to
// make a parser quadratic, checkpoint options that overflow or are not
// finite, command-line values that would diverge a run, and images that are
// damaged or crafted. Each case is a fault seen in a hostile review.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include <pixgrad/core/error.h>
#include <pixgrad/core/safetensors.h>
#include <pixgrad/data/image.h>
#include <pixgrad/training/checkpoint.h>
#include <pixgrad/training/train_config.h>
#include "test_paths.h"
#include "tiny_run.h"

using namespace pixgrad;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using testing::bytes_of;

std::string length_prefix(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out;
}

// The message of what `action` throws ("" if it does not throw), and how long it took.
template <typename Action>
std::string error_of(Action&& action, double* seconds = nullptr) {
  const auto start = std::chrono::steady_clock::now();
  std::string message;
  try {
    action();
  } catch (const std::exception& error) {
    message = error.what();
  }
  if (seconds) *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return message;
}

// A valid checkpoint's options and state, for editing.
struct Metadata {
  nlohmann::json config = training::to_json(training::TrainConfig{});
  nlohmann::json state = {{"iteration", 1}, {"epoch", 0}, {"batches_done", 1}, {"rng_seed", 7}, {"rng_offset", 0}};

  // A checkpoint file in memory with these options, read back.
  training::Checkpoint read() const {
    return read_with(config.dump(), state.dump());
  }
  static training::Checkpoint read_with(const std::string& config_text, const std::string& state_text) {
    const nlohmann::json header = {{"__metadata__",
                                    {{"pixgrad.format", "pix2pix-checkpoint-1"},
                                     {"config", config_text},
                                     {"state", state_text}}}};
    const std::string bytes = length_prefix(header.dump().size()) + header.dump();
    return training::read_checkpoint(
        "forged", safetensors::load_from_memory("forged", reinterpret_cast<const uint8_t*>(bytes.data()),
                                                bytes.size()));
  }
};

}  // namespace

TEST_CASE("a FIFO given as a checkpoint or an image fails at once instead of waiting for a writer",
          "[untrusted]") {
  const fs::path folder = testing::fresh_folder("fifo");
  fs::create_directories(folder);
  const std::string fifo = (folder / "checkpoint.safetensors").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  double seconds = 0;
  CHECK_THAT(error_of([&] { training::load_checkpoint(fifo); }, &seconds), Contains("not a regular file"));
  CHECK(seconds < 5);
  CHECK_THAT(error_of([&] { data::load_image(fifo); }), Contains("not a regular file"));
  fs::remove_all(folder);
}

TEST_CASE("a safetensors header of many small tensors is read in linear time", "[untrusted][safetensors]") {
  // 300,000 one-element tensors: a 17 MB header. A parser that rescans each
  // parent object took minutes on this; linear parsing takes about a second.
  constexpr int kTensors = 300000;
  std::string header = "{";
  for (int i = 0; i < kTensors; ++i) {
    header += (i ? ",\"t" : "\"t") + std::to_string(i) + "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[" +
              std::to_string(4 * i) + "," + std::to_string(4 * i + 4) + "]}";
  }
  header += "}";
  const std::string bytes = length_prefix(header.size()) + header + std::string(4 * kTensors, '\0');
  double seconds = 0;
  size_t count = 0;
  const std::string message = error_of(
      [&] {
        count = safetensors::load_from_memory("many", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())
                    .tensors.size();
      },
      &seconds);
  CHECK(message.empty());
  CHECK(count == static_cast<size_t>(kTensors));
  INFO(seconds << " s");
  CHECK(seconds < 20);  // a bound for a slow machine, far below the quadratic parser's minutes
}

TEST_CASE("a NUL byte in a safetensors header is refused, not taken for its end", "[untrusted][safetensors]") {
  const std::string header = std::string("{\"__metadata__\":{\"a\":\"b\"}}") + '\0' + "garbage";
  const std::string bytes = length_prefix(header.size()) + header;
  CHECK_THAT(error_of([&] {
               safetensors::load_from_memory("nul", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
             }),
             Contains("NUL byte"));
}

TEST_CASE("checkpoint options and state are range-checked before use", "[untrusted][checkpoint]") {
  CHECK_NOTHROW(Metadata().read());
  SECTION("integers that would wrap") {
    Metadata m;
    m.config["crop_size"] = (uint64_t{1} << 32) + 32;
    CHECK_THAT(error_of([&] { m.read(); }), Contains("crop_size") && Contains("in range"));
  }
  SECTION("a position past any run") {
    Metadata m;
    m.state["iteration"] = uint64_t{1} << 63;
    CHECK_THAT(error_of([&] { m.read(); }), Contains("iteration"));
    m.state["iteration"] = -5;
    CHECK_THAT(error_of([&] { m.read(); }), Contains("iteration"));
  }
  SECTION("numbers too large for a double") {
    CHECK_THAT(error_of([&] { Metadata::read_with(R"({"lr": 1e400})", Metadata().state.dump()); }),
               Contains("bad training metadata") && Contains("1e400"));
  }
  SECTION("types that do not match") {
    Metadata m;
    m.config["epochs"] = "200";
    CHECK_THAT(error_of([&] { m.read(); }), Contains("epochs") && Contains("integer"));
  }
  SECTION("strings with control characters, and overlong ones") {
    Metadata m;
    m.config["dataset"] = "data\x1b[2Jset";
    const std::string message = error_of([&] { m.read(); });
    CHECK_THAT(message, Contains("dataset") && Contains("control characters"));
    CHECK(message.find('\x1b') == std::string::npos);
    m.config["dataset"] = std::string(5000, 'a');
    CHECK_THAT(error_of([&] { m.read(); }), Contains("dataset"));
  }
  SECTION("metadata too large to be real") {
    Metadata m;
    m.config["dataset"] = std::string(70000, 'a');
    CHECK_THAT(error_of([&] { m.read(); }), Contains("config") && Contains("bytes"));
  }
}

TEST_CASE("options that would make a run diverge or misbehave are refused", "[untrusted][options]") {
  const auto refused = [](auto change, const char* option) {
    training::TrainConfig config;
    config.dataset = "x";
    change(config);
    INFO(option);
    CHECK_THAT(error_of([&] { training::validate(config); }), Contains(option));
  };
  refused([](training::TrainConfig& c) { c.lr = std::numeric_limits<double>::infinity(); }, "--lr");
  refused([](training::TrainConfig& c) { c.lr = 0; }, "--lr");
  refused([](training::TrainConfig& c) { c.lambda_l1 = std::nan(""); }, "--lambda-l1");
  refused([](training::TrainConfig& c) { c.lambda_l1 = -1; }, "--lambda-l1");
  refused([](training::TrainConfig& c) { c.decay_epochs = -5; }, "--decay-epochs");
  refused([](training::TrainConfig& c) { c.beta1 = std::nan(""); }, "--beta1");
  refused([](training::TrainConfig& c) { c.beta1 = 0.9999999999999999; }, "--beta1");
  refused([](training::TrainConfig& c) { c.train_split = "../elsewhere"; }, "--train-split");
  refused([](training::TrainConfig& c) { c.load_size = 100000; }, "--load-size");
  refused([](training::TrainConfig& c) { c.output = "out\n"; }, "output");
  training::TrainConfig fine;
  fine.dataset = "x";
  CHECK_NOTHROW(training::validate(fine));
}

TEST_CASE("damaged and crafted images give a one-line error", "[untrusted][images]") {
  const std::string photo = testing::facades_root() + "/val/1.jpg";
  if (!testing::have_shared_data(photo)) return;
  const std::string jpeg = bytes_of(photo);
  const auto decode = [](const std::string& bytes) {
    return error_of([&] { data::decode_image("crafted", std::vector<uint8_t>(bytes.begin(), bytes.end())); });
  };
  CHECK(decode(jpeg).empty());

  SECTION("a JPEG cut off after its start marker") {
    CHECK_THAT(decode(jpeg.substr(0, 3)), Contains("truncated or corrupt JPEG header"));
  }
  SECTION("a JPEG cut in the middle but still ending in its end marker") {
    const std::string cut = jpeg.substr(0, jpeg.size() / 2) + "\xFF\xD9";
    CHECK_THAT(decode(cut), Contains("JPEG data"));
  }
  SECTION("a Huffman table whose code counts exceed 256 entries") {
    // The first DHT segment: FF C4, length, then table class/id and 16 counts.
    const size_t dht = jpeg.find("\xFF\xC4");
    REQUIRE(dht != std::string::npos);
    std::string crafted = jpeg;
    for (size_t i = 0; i < 16; ++i) crafted[dht + 5 + i] = static_cast<char>(0xFF);
    const std::string message = decode(crafted);
    CHECK_THAT(message, Contains("JPEG"));
    CHECK(message.find('\n') == std::string::npos);
  }
  SECTION("a PNG whose chunk data no longer matches its CRC") {
    const std::string labels = testing::shared_data_root() + "/cmp_facade_base/cmp_b0001.png";
    if (!testing::have_shared_data(labels)) return;
    std::string png = bytes_of(labels);
    const size_t idat = png.find("IDAT");
    REQUIRE(idat != std::string::npos);
    png[idat + 10] = static_cast<char>(png[idat + 10] ^ 0x55);
    CHECK_THAT(decode(png), Contains("CRC"));
    CHECK_THAT(error_of([&] { data::decode_label_image("labels", std::vector<uint8_t>(png.begin(), png.end())); }),
               Contains("CRC"));
  }
}

TEST_CASE("a PNG with an empty IDAT chunk decodes like the same PNG without it", "[untrusted][images]") {
  // stb copies a first, empty IDAT into a buffer it has not allocated yet
  // (found by fuzz_image; undefined behaviour the sanitizer build stops on).
  const fs::path folder = testing::fresh_folder("empty_idat");
  fs::create_directories(folder);
  data::Image image(5, 3, 3);
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(i * 17);
  data::save_png((folder / "plain.png").string(), image);
  const std::string plain = bytes_of(folder / "plain.png");
  const size_t idat = plain.find("IDAT") - 4;  // the chunk starts with its length
  // An empty IDAT chunk: length 0, type, and the CRC-32 of "IDAT" (0x35AF061E).
  const std::string empty_chunk = std::string("\0\0\0\0IDAT", 8) + "\x35\xAF\x06\x1E";
  const std::string with_empty = plain.substr(0, idat) + empty_chunk + plain.substr(idat);
  const data::Image decoded = data::decode_image("with_empty", std::vector<uint8_t>(with_empty.begin(), with_empty.end()));
  CHECK(decoded.pixels == image.pixels);
  fs::remove_all(folder);
}
