// The counter-based generator: known-answer vectors and stream layout.
#include <catch2/catch.hpp>

#include <cmath>

#include <pixgrad/kernels/philox.h>
#include <pixgrad/core/tensor.h>

using namespace pixgrad;

TEST_CASE("philox4x32-10 matches the Random123 known-answer vectors", "[philox]") {
  // From the Random123 distribution's kat_vectors file (philox4x32 10 rounds).
  const philox::Block zero = philox::philox4x32_10({{0, 0, 0, 0}}, 0, 0);
  CHECK(zero.word[0] == 0x6627e8d5u);
  CHECK(zero.word[1] == 0xe169c58du);
  CHECK(zero.word[2] == 0xbc57ac4cu);
  CHECK(zero.word[3] == 0x9b00dbd8u);
  const philox::Block ones = philox::philox4x32_10({{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
                                                   0xffffffffu, 0xffffffffu);
  CHECK(ones.word[0] == 0x408f276du);
  CHECK(ones.word[1] == 0x41c83b0eu);
  CHECK(ones.word[2] == 0xa20bc7c6u);
  CHECK(ones.word[3] == 0x6d5451fdu);
  const philox::Block pi = philox::philox4x32_10({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
                                                 0xa4093822u, 0x299f31d0u);
  CHECK(pi.word[0] == 0xd16cfe09u);
  CHECK(pi.word[1] == 0x94fdccebu);
  CHECK(pi.word[2] == 0x5001e420u);
  CHECK(pi.word[3] == 0x24126ea1u);
}

TEST_CASE("uniform draws have the right range and moments", "[philox]") {
  Generator generator(42);
  const std::vector<double> values = Tensor::uniform({100000}, -3, 5, generator).to_double_vector();
  double total = 0, squares = 0;
  for (double v : values) {
    REQUIRE(v >= -3);
    REQUIRE(v < 5);
    total += v;
  }
  const double mean = total / values.size();
  for (double v : values) squares += (v - mean) * (v - mean);
  CHECK(mean == Approx(1.0).margin(0.03));
  CHECK(squares / values.size() == Approx(64.0 / 12).epsilon(0.02));
}

TEST_CASE("normal draws have the right moments", "[philox]") {
  Generator generator(9);
  const std::vector<double> values = Tensor::normal({100000}, 2, 0.5, generator).to_double_vector();
  double total = 0, squares = 0;
  for (double v : values) total += v;
  const double mean = total / values.size();
  for (double v : values) squares += (v - mean) * (v - mean);
  CHECK(mean == Approx(2.0).margin(0.01));
  CHECK(std::sqrt(squares / values.size()) == Approx(0.5).epsilon(0.02));
}

TEST_CASE("the stream is a function of seed and offset only", "[philox]") {
  Generator a(5), b(5), c(6);
  const std::vector<float> first = Tensor::uniform({16}, 0, 1, a).to_vector();
  CHECK(first == Tensor::uniform({16}, 0, 1, b).to_vector());
  CHECK(first != Tensor::uniform({16}, 0, 1, c).to_vector());
  // Two draws of 8 continue the stream exactly where one draw of 16 would.
  Generator split(5);
  std::vector<float> joined = Tensor::uniform({8}, 0, 1, split).to_vector();
  const std::vector<float> second = Tensor::uniform({8}, 0, 1, split).to_vector();
  joined.insert(joined.end(), second.begin(), second.end());
  CHECK(joined == first);
  CHECK(split.offset() == 4);
  // Restoring the state replays the draw.
  Generator replay(0);
  replay.set_state(5, 2);
  const std::vector<float> tail = Tensor::uniform({8}, 0, 1, replay).to_vector();
  CHECK(tail == second);
}
