#include <pixgrad/optim/schedule.h>

#include <algorithm>

#include <pixgrad/core/error.h>

namespace pixgrad::optim {

namespace {
void check_epoch(int epoch) { PIXGRAD_CHECK(epoch >= 0, "schedule: epoch ", epoch, " is negative"); }
}  // namespace

double ConstantSchedule::factor(int epoch) const {
  check_epoch(epoch);
  return 1.0;
}

LinearDecaySchedule::LinearDecaySchedule(int constant_epochs, int decay_epochs)
    : constant_epochs_(constant_epochs), decay_epochs_(decay_epochs) {
  PIXGRAD_CHECK(constant_epochs >= 0 && decay_epochs >= 0,
                "LinearDecaySchedule: epoch counts must be non-negative, got ", constant_epochs, " and ", decay_epochs);
}

double LinearDecaySchedule::factor(int epoch) const {
  check_epoch(epoch);
  const double decayed = std::max(0, epoch + 2 - constant_epochs_);
  return std::max(0.0, 1.0 - decayed / (decay_epochs_ + 1.0));
}

}  // namespace pixgrad::optim
