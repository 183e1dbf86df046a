// Learning-rate schedules, as a factor on the initial rate per epoch (epochs
// counted from 0): the trainer sets lr = initial_lr * factor(epoch) before
// each epoch.
#pragma once

namespace pixgrad::optim {

class Schedule {
 public:
  virtual ~Schedule() = default;
  virtual double factor(int epoch) const = 0;
};

class ConstantSchedule : public Schedule {
 public:
  double factor(int epoch) const override;
};

// pix2pix's "linear" policy: the initial rate for `constant_epochs` epochs,
// then a linear decay over `decay_epochs` epochs towards (not reaching) zero:
//   factor(epoch) = 1 - max(0, epoch + 1 - constant_epochs) / (decay_epochs + 1)
// This is the reference trainer's lambda_rule(e) = 1 - max(0, e + epoch_count
// - n_epochs) / (n_epochs_decay + 1) with epoch_count = 1, where LambdaLR's e
// is the number of epochs already finished (the scheduler steps at the end of
// each epoch). With 100 + 100 epochs, epochs 0..99 get 1, epoch 100 gets
// 100/101 and the last, epoch 199, 1/101. Past the end the factor stays 0.
class LinearDecaySchedule : public Schedule {
 public:
  LinearDecaySchedule(int constant_epochs, int decay_epochs);
  double factor(int epoch) const override;

 private:
  int constant_epochs_;
  int decay_epochs_;
};

}  // namespace pixgrad::optim
