// safetensors (core/safetensors.h): round trips, atomic writes, and a suite of
// malformed files that the reader must reject with a one-line message.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <pixgrad/core/error.h>
#include <pixgrad/core/safetensors.h>
#include "gradcheck.h"
#include "scratch_folder.h"

using namespace pixgrad;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
namespace fs = std::filesystem;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

std::string length_prefix(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out;
}

// A file with the given header text and `data_bytes` bytes of data.
std::string file_with(const std::string& header, size_t data_bytes) {
  return length_prefix(header.size()) + header + std::string(data_bytes, '\x01');
}

const char* const kGoodEntry = R"("a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})";

}  // namespace

TEST_CASE("safetensors round-trips float32 and float64 tensors and metadata", "[safetensors]") {
  const testing::ScratchFolder directory("safetensors");
  const std::string path = directory.at("model.safetensors");
  const std::map<std::string, Tensor> tensors{
      {"down.0.weight", testing::random_tensor({4, 3, 2, 2}, 31, DType::Float32)},
      {"double", testing::random_tensor({5}, 32, DType::Float64)},
      {"scalar", Tensor::full({}, 42.0, Device::cpu(), DType::Float64)},
      {"empty", Tensor::zeros({0, 3})},
      {"also empty", Tensor::zeros({2, 0}, Device::cpu(), DType::Float64)},
      {"name with \"quotes\" and ünïcode", Tensor::ones({1})}};
  const std::map<std::string, std::string> metadata{{"format", "pt"}, {"config", R"({"lr": 0.0002})"}};
  safetensors::save(path, tensors, metadata);

  const std::string bytes = read_bytes(path);
  uint64_t header_length = 0;
  for (int i = 0; i < 8; ++i) header_length |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  CHECK(header_length % 8 == 0);
  CHECK(bytes[8] == '{');
  CHECK_FALSE(fs::exists(path + ".tmp"));

  const safetensors::File file = safetensors::load(path);
  CHECK(file.metadata == metadata);
  REQUIRE(file.tensors.size() == tensors.size());
  for (const auto& [name, tensor] : tensors) {
    INFO(name);
    const Tensor& loaded = file.tensors.at(name);
    CHECK(loaded.shape() == tensor.shape());
    CHECK(loaded.dtype() == tensor.dtype());
    CHECK(loaded.to_double_vector() == tensor.to_double_vector());
  }
  CHECK(file.tensors.at("scalar").item() == 42.0);

  // No metadata, no tensors: still a valid file.
  safetensors::save(path, {}, {});
  CHECK(safetensors::load(path).tensors.empty());
}

TEST_CASE("safetensors::save rejects what the format cannot hold before touching the file", "[safetensors]") {
  const testing::ScratchFolder directory("safetensors");
  const std::string path = directory.at("x.safetensors");
  CHECK_THROWS_WITH(safetensors::save(path, {{"__metadata__", Tensor::ones({1})}}),
                    StartsWith("safetensors: cannot write '" + path + "': '__metadata__' cannot name a tensor"));
  // (these are refused before any file is created)
  CHECK_THROWS_WITH(safetensors::save(path, {{"x", Tensor()}}), Contains("tensor \"x\" is undefined"));
  CHECK_THROWS_WITH(safetensors::save(path, {{"x", Tensor::ones({1})}}, {{"bad", "\xff"}}),
                    Contains("not valid UTF-8"));
  CHECK_FALSE(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("safetensors::save is atomic: a failed write leaves the old file intact", "[safetensors]") {
  const testing::ScratchFolder directory("safetensors");
  const std::string path = directory.at("checkpoint.safetensors");
  safetensors::save(path, {{"w", Tensor::full({3}, 1.5)}});
  const std::string old_bytes = read_bytes(path);
  const std::map<std::string, Tensor> big{{"w", Tensor::zeros({1 << 18})}};

  SECTION("links where the files go are replaced, never written through") {
    const std::string victim = directory.at("victim");
    write_bytes(victim, "precious");
    fs::create_symlink(victim, path + ".tmp");
    safetensors::save(path, {{"w", Tensor::full({3}, 1.5)}});
    fs::remove(path);
    fs::create_symlink(victim, path);
    safetensors::save(path, {{"w", Tensor::full({3}, 1.5)}});
    CHECK(read_bytes(victim) == "precious");
    CHECK_FALSE(fs::is_symlink(path));
    fs::remove(path + ".tmp");
  }
  SECTION("the write itself fails (file size limit)") {
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    const auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = saved;
    small.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    CHECK_THROWS_WITH(safetensors::save(path, big),
                      StartsWith("safetensors: '" + path + "': cannot write: ") && Contains("too large"));
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, previous_handler);
    CHECK(fs::directory_iterator(directory.path) != fs::directory_iterator());
    for (const auto& entry : fs::directory_iterator(directory.path))
      CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
  }
  SECTION("the directory is not writable") {
    fs::permissions(directory.path, fs::perms::owner_read | fs::perms::owner_exec);
    if (::access(directory.path.c_str(), W_OK) == 0) {
      WARN("running with privileges that ignore directory permissions; nothing to check");
    } else {
      CHECK_THROWS_WITH(safetensors::save(path, big), Contains("Permission denied"));
    }
    fs::permissions(directory.path, fs::perms::owner_all);
  }
  CHECK(read_bytes(path) == old_bytes);
  CHECK(safetensors::load(path).tensors.at("w").to_vector() == std::vector<float>(3, 1.5f));
}

TEST_CASE("safetensors::load rejects malformed files with one-line messages", "[safetensors]") {
  const testing::ScratchFolder directory("safetensors");
  const std::string path = directory.at("bad.safetensors");
  auto expect_rejected = [&](const std::string& bytes, const std::string& problem) {
    write_bytes(path, bytes);
    INFO("expecting: " << problem);
    try {
      safetensors::load(path);
      FAIL("loaded a malformed file");
    } catch (const Error& error) {
      const std::string message = error.what();
      CHECK_THAT(message, StartsWith("safetensors: '" + path + "': ") && Contains(problem));
      CHECK(message.find('\n') == std::string::npos);
    }
  };
  auto header = [](const std::string& body) { return "{" + body + "}"; };

  SECTION("missing or truncated") {
    CHECK_THROWS_WITH(safetensors::load(directory.at("absent")), Contains("no such file"));
    expect_rejected("", "file is 0 bytes, too short");
    expect_rejected(std::string("\x08\0\0", 3), "file is 3 bytes, too short");
    expect_rejected(file_with(header(kGoodEntry), 8).substr(0, 30),
                    "header length 61 exceeds the 22 bytes that follow it");
    expect_rejected(file_with(header(kGoodEntry), 4), "run past the end of the 4-byte data buffer");
  }
  SECTION("header length beyond the limit") {
    expect_rejected(length_prefix(100'000'001) + "{}", "header length 100000001 exceeds the limit");
    expect_rejected(length_prefix(~uint64_t{0}) + "{}", "exceeds the limit");
  }
  SECTION("header not JSON, not an object, too deep") {
    expect_rejected(file_with("{\"a\": [1, 2", 0), "header is not valid JSON");
    expect_rejected(file_with("{\"a\": \"\xff\xfe\"}", 0), "header is not valid JSON");
    expect_rejected(file_with("[1, 2]", 0), "header is not a JSON object");
    expect_rejected(file_with("  {}", 0), "header is not a JSON object");
    expect_rejected(file_with("{\"a\":" + std::string(200, '[') + std::string(200, ']') + "}", 0),
                    "header nests deeper than 128 levels");
  }
  SECTION("bad entries") {
    expect_rejected(file_with(header(R"("a": 3)"), 0), "tensor \"a\": entry is not an object");
    expect_rejected(file_with(header(R"("a": {"dtype": "F32", "shape": [0]})"), 0), "missing field 'data_offsets'");
    expect_rejected(file_with(header(R"("a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0], "x": 1})"), 0),
                    "unexpected field \"x\"");
    expect_rejected(file_with(header(R"("a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]})"), 4),
                    "tensor \"a\": unsupported dtype \"F16\"");
    expect_rejected(file_with(header(R"("a": {"dtype": 1, "shape": [2], "data_offsets": [0, 8]})"), 8),
                    "dtype is not a string");
    expect_rejected(file_with(header(R"("a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]})"), 8),
                    "shape [-2] is not a list of non-negative integers");
    expect_rejected(file_with(header(R"("a": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]})"), 8),
                    "is not a list of non-negative integers");
    expect_rejected(
        file_with(header(R"("a": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]})"), 8),
        "is too large (its byte size overflows)");
    expect_rejected(
        file_with(header(R"("a": {"dtype": "F32", "shape": [9223372036854775808, 0], "data_offsets": [0, 0]})"), 0),
        "is too large");
    expect_rejected(file_with(header(R"("a": {"dtype": "F32", "shape": [2], "data_offsets": [0]})"), 8),
                    "data_offsets [0] is not a pair of non-negative integers");
    expect_rejected(file_with(header(R"("a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]})"), 8),
                    "end before they begin");
    expect_rejected(file_with(header(R"("a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]})"), 8),
                    "span 8 bytes, but F32 [3] needs 12");
  }
  SECTION("offsets out of range, overlapping, with gaps or trailing bytes") {
    expect_rejected(file_with(header(R"("a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]})"), 12),
                    "tensor \"a\": data_offsets [8, 16] run past the end of the 12-byte data buffer");
    expect_rejected(
        file_with(header(std::string(kGoodEntry) + R"(, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]})"),
                  12),
        "tensor \"b\": data_offsets [4, 12] overlap another tensor's bytes");
    expect_rejected(
        file_with(
            header(std::string(kGoodEntry) + R"(, "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]})"), 20),
        "tensor \"b\": data_offsets [12, 20] leave a gap: bytes 8 to 12 belong to no tensor");
    expect_rejected(file_with(header(R"("a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]})"), 12),
                    "leave a gap: bytes 0 to 4");
    expect_rejected(file_with(header(kGoodEntry), 9), "the data buffer has 9 bytes but the tensors cover only 8");
  }
  SECTION("duplicate keys and bad metadata") {
    expect_rejected(file_with(header(std::string(kGoodEntry) + ", " + kGoodEntry), 8),
                    "duplicate key \"a\" in the header");
    expect_rejected(
        file_with(header(R"("a": {"dtype": "F32", "dtype": "F32", "shape": [2], "data_offsets": [0, 8]})"), 8),
        "duplicate key \"dtype\"");
    expect_rejected(file_with(header(std::string(kGoodEntry) + R"(, "__metadata__": {"epoch": 3})"), 8),
                    "__metadata__ value for \"epoch\" is not a string");
    expect_rejected(file_with(header(std::string(kGoodEntry) + R"(, "__metadata__": ["x"])"), 8),
                    "__metadata__ is not an object");
  }
  SECTION("names with control characters stay on one line") {
    expect_rejected(file_with(header(R"("line\nbreak": {"dtype": "I8", "shape": [], "data_offsets": [0, 1]})"), 1),
                    "tensor \"line\\nbreak\": unsupported dtype \"I8\"");
  }
}

TEST_CASE("safetensors::load accepts tensors stored in any order", "[safetensors]") {
  const testing::ScratchFolder directory("safetensors");
  const std::string path = directory.at("ordered.safetensors");
  const std::string header = R"({"z": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, )"
                             R"("e": {"dtype": "F64", "shape": [0], "data_offsets": [4, 4]}, )"
                             R"("a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})";
  std::string data(8, '\0');
  const float z = 2.0f, a = -3.0f;
  std::memcpy(data.data(), &z, 4);
  std::memcpy(data.data() + 4, &a, 4);
  write_bytes(path, length_prefix(header.size()) + header + data);
  const safetensors::File file = safetensors::load(path);
  CHECK(file.tensors.at("z").item() == 2.0);
  CHECK(file.tensors.at("a").item() == -3.0);
  CHECK(file.tensors.at("e").numel() == 0);
}
