// Learning-rate schedules (layers/schedule.h).
#include <catch2/catch.hpp>

#include "core/error.h"
#include "layers/schedule.h"

using namespace pixgrad;

TEST_CASE("LinearDecaySchedule follows the pix2pix reference lambda_rule", "[schedule]") {
  const optim::LinearDecaySchedule schedule(100, 100);
  // lambda_rule(e) = 1 - max(0, e + 1 - 100) / 101, e = epochs finished.
  for (int epoch = 0; epoch < 250; ++epoch) {
    const double expected = std::max(0.0, 1.0 - std::max(0, epoch + 1 - 100) / 101.0);
    CHECK(schedule.factor(epoch) == Approx(expected).margin(1e-15));
  }
  CHECK(schedule.factor(99) == 1.0);
  CHECK(schedule.factor(100) == Approx(100.0 / 101));
  CHECK(schedule.factor(199) == Approx(1.0 / 101));
  CHECK(schedule.factor(200) == 0.0);
  CHECK(schedule.factor(1000) == 0.0);
}

TEST_CASE("LinearDecaySchedule edge cases and ConstantSchedule", "[schedule]") {
  const optim::LinearDecaySchedule no_constant(0, 3);
  CHECK(no_constant.factor(0) == Approx(0.75));
  CHECK(no_constant.factor(2) == Approx(0.25));
  const optim::LinearDecaySchedule no_decay(2, 0);
  CHECK(no_decay.factor(1) == 1.0);
  CHECK(no_decay.factor(2) == 0.0);
  CHECK(optim::ConstantSchedule().factor(12345) == 1.0);
  CHECK_THROWS_AS(no_decay.factor(-1), Error);
  CHECK_THROWS_AS(optim::LinearDecaySchedule(-1, 5), Error);
}
