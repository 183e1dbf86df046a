// The checks with which ranks agree before training together: that every
// rank is ready (a rank that failed alone must not leave the others waiting)
// and that they were started alike (named by what differs). Ranks are
// threads here (tests/thread_communicator.h); the mpirun test runs the same
// checks through train_pix2pix.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include <pixgrad/core/error.h>
#include <pixgrad/core/fnv1a.h>
#include <pixgrad/core/tensor.h>
#include <pixgrad/data/datasets.h>
#include <pixgrad/distributed/agreement.h>

#include "thread_communicator.h"

using namespace pixgrad;
using namespace pixgrad::distributed;

namespace {

constexpr int kRanks = 3;

// What each rank saw: nothing, or an AgreedError's message and whether it prints it.
struct Outcome {
  bool threw = false;
  std::string message;
  bool prints = false;
};

template <typename Check>
std::array<Outcome, kRanks> on_every_rank(const Check& check) {
  std::array<Outcome, kRanks> outcomes;
  testing::ThreadWorld(kRanks).run([&](Communicator& world) {
    Outcome& outcome = outcomes[static_cast<size_t>(world.rank())];
    try {
      check(world);
    } catch (const AgreedError& error) {
      outcome = {true, error.what(), error.should_print()};
    }
  });
  return outcomes;
}

std::exception_ptr error_with(const std::string& message) { return std::make_exception_ptr(Error(message)); }

}  // namespace

TEST_CASE("agree_all_succeeded returns on every rank when none failed", "[distributed][agreement]") {
  for (const Outcome& outcome : on_every_rank([](Communicator& world) {
         agree_all_succeeded(world, nullptr, "start");
       }))
    CHECK_FALSE(outcome.threw);
}

TEST_CASE("a rank that fails alone stops every rank, and each says its part once", "[distributed][agreement]") {
  const auto outcomes = on_every_rank([](Communicator& world) {
    agree_all_succeeded(world, world.rank() == 2 ? error_with("image 'x.jpg': not a JPEG") : nullptr, "start");
  });
  for (const Outcome& outcome : outcomes) CHECK(outcome.threw);
  // The failed rank prints its own message; rank 0 names it; rank 1 is silent.
  CHECK(outcomes[2].message == "image 'x.jpg': not a JPEG");
  CHECK(outcomes[2].prints);
  CHECK(outcomes[0].message.find("rank 2 could not start") != std::string::npos);
  CHECK(outcomes[0].prints);
  CHECK_FALSE(outcomes[1].prints);
}

TEST_CASE("the same error on every rank is printed by rank 0 alone", "[distributed][agreement]") {
  const auto outcomes = on_every_rank([](Communicator& world) {
    agree_all_succeeded(world, error_with("dataset 'd': not there"), "start");
  });
  for (const Outcome& outcome : outcomes) {
    CHECK(outcome.threw);
    CHECK(outcome.message == "dataset 'd': not there");
  }
  CHECK(outcomes[0].prints);
  CHECK_FALSE(outcomes[1].prints);
  CHECK_FALSE(outcomes[2].prints);
}

TEST_CASE("a different error on another rank is printed there too", "[distributed][agreement]") {
  const auto outcomes = on_every_rank([](Communicator& world) {
    agree_all_succeeded(world, error_with(world.rank() == 1 ? "out of memory" : "dataset 'd': not there"), "start");
  });
  CHECK(outcomes[0].prints);
  CHECK(outcomes[1].prints);
  CHECK(outcomes[1].message == "out of memory");
  CHECK_FALSE(outcomes[2].prints);
}

TEST_CASE("several failed ranks are all named by rank 0", "[distributed][agreement]") {
  const auto outcomes = on_every_rank([](Communicator& world) {
    agree_all_succeeded(world, world.rank() > 0 ? error_with("bad") : nullptr, "read its next batch");
  });
  CHECK(outcomes[0].message.find("ranks 1 and 2 could not read its next batch") != std::string::npos);
}

TEST_CASE("agree_alike names exactly the properties that differ", "[distributed][agreement]") {
  const auto outcomes = on_every_rank([](Communicator& world) {
    const uint64_t rank = static_cast<uint64_t>(world.rank());
    agree_alike(world, {{"--batch-size", rank == 2 ? 4u : 1u},
                        {"--seed", 7},
                        {"--norm", digest_of(rank == 1 ? std::string("batch") : std::string("instance"))}});
  });
  for (const Outcome& outcome : outcomes) {
    CHECK(outcome.threw);
    CHECK(outcome.message.find("differ in --batch-size, --norm;") != std::string::npos);
    CHECK(outcome.message.find("--seed") == std::string::npos);
  }
  CHECK(outcomes[0].prints);
  CHECK_FALSE(outcomes[1].prints);
}

TEST_CASE("agree_alike passes ranks started alike", "[distributed][agreement]") {
  for (const Outcome& outcome : on_every_rank([](Communicator& world) {
         agree_alike(world, {{"--batch-size", 1}, {"the networks", digest_of(Tensor::ones({3, 5}))}});
       }))
    CHECK_FALSE(outcome.threw);
}

TEST_CASE("a digest changes with any element, the shape or the seed", "[distributed][agreement]") {
  const std::vector<float> values = {0.5f, -1.25f, 3.0f, 7.5f, 1e-20f, 2.0f, 9.0f};
  const Tensor base = Tensor::from_vector(values, {7});
  const uint64_t digest = digest_of(base);
  CHECK(digest_of(base.clone()) == digest);
  for (size_t i = 0; i < values.size(); ++i) {
    std::vector<float> changed = values;
    changed[i] = std::nextafter(changed[i], 100.0f);  // one unit in the last place
    CHECK(digest_of(Tensor::from_vector(changed, {7})) != digest);
  }
  CHECK(digest_of(Tensor::from_vector(values, {1, 7})) != digest);
  CHECK(digest_of(base, 1) != digest);
  CHECK(digest_of(std::string("batch")) != digest_of(std::string("batcH")));
}

TEST_CASE("FNV-1a gives its published values, and a file list's digest hashes names and sizes",
          "[distributed][agreement]") {
  CHECK(fnv1a("", 0) == 0xcbf29ce484222325ull);
  CHECK(fnv1a("a", 1) == 0xaf63dc4c8601ec8cull);
  CHECK(fnv1a("foobar", 6) == 0x85944171f73967e8ull);
  // Eight bytes a step is another hash, the same below eight bytes.
  CHECK(fnv1a_words("foobar", 6) == fnv1a("foobar", 6));
  CHECK(fnv1a_words("foobar, foobar", 14) != fnv1a("foobar, foobar", 14));
  // "name\0size\0" per file, "?" for a size that cannot be read.
  const std::string listed("x.png\0?\0", 8);
  CHECK(data::digest_of_files({"/nonexistent/x.png"}) == fnv1a(listed.data(), listed.size()));
}

TEST_CASE("in a single process the checks are the identity, and its own error is rethrown as it is",
          "[distributed][agreement]") {
  const auto world = single_process();
  CHECK_NOTHROW(agree_alike(*world, {{"--seed", 1}}));
  CHECK_NOTHROW(agree_all_succeeded(*world, nullptr, "start"));
  CHECK_THROWS_MATCHES(agree_all_succeeded(*world, error_with("plain"), "start"), Error,
                       Catch::Matchers::Message("plain"));
}
