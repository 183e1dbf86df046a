// Learning-rate schedules (optim/schedule.h).
#include <catch2/catch.hpp>

#include <pixgrad/core/error.h>
#include <pixgrad/optim/schedule.h>

using namespace pixgrad;

TEST_CASE("LinearDecaySchedule follows the pix2pix reference's per-epoch rates", "[schedule]") {
  // The reference (100 + 100 epochs) steps LambdaLR at the start of each of
  // its epochs 1..200, so its epoch e runs at lambda_rule(e) = 1 - max(0, e +
  // 1 - 100) / 101. Our epoch k is its epoch k + 1. Spot values written out:
  const optim::LinearDecaySchedule schedule(100, 100);
  CHECK(schedule.factor(0) == 1.0);
  CHECK(schedule.factor(98) == 1.0);           // its epoch 99: lambda 1
  CHECK(schedule.factor(99) == Approx(100.0 / 101));  // its epoch 100: 1 - 1/101
  CHECK(schedule.factor(149) == Approx(50.0 / 101));  // its epoch 150: 1 - 51/101
  CHECK(schedule.factor(198) == Approx(1.0 / 101));   // its epoch 199
  CHECK(schedule.factor(199) == 0.0);                 // its last epoch, 200, runs at 0
  CHECK(schedule.factor(1000) == 0.0);
  for (int epoch = 1; epoch < 250; ++epoch) CHECK(schedule.factor(epoch) <= schedule.factor(epoch - 1));
}

TEST_CASE("LinearDecaySchedule edge cases and ConstantSchedule", "[schedule]") {
  const optim::LinearDecaySchedule no_constant(0, 3);
  CHECK(no_constant.factor(0) == Approx(0.5));
  CHECK(no_constant.factor(1) == Approx(0.25));
  CHECK(no_constant.factor(2) == 0.0);
  const optim::LinearDecaySchedule no_decay(2, 0);
  CHECK(no_decay.factor(0) == 1.0);
  CHECK(no_decay.factor(1) == 0.0);
  CHECK(optim::ConstantSchedule().factor(12345) == 1.0);
  CHECK_THROWS_AS(no_decay.factor(-1), Error);
  CHECK_THROWS_AS(optim::LinearDecaySchedule(-1, 5), Error);
}
