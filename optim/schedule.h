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

// pix2pix's "linear" policy: the initial rate for the first epochs, then a
// linear decay to zero over `decay_epochs` epochs:
//   factor(epoch) = 1 - max(0, epoch + 2 - constant_epochs) / (decay_epochs + 1)
// This is the current PyTorch reference: lambda_rule(e) = 1 - max(0, e +
// epoch_count - n_epochs) / (n_epochs_decay + 1) with epoch_count = 1, and
// train.py steps the scheduler at the *start* of every epoch, so the epoch we
// number k (from 0) runs with lambda_rule(k + 1). With 100 + 100 epochs,
// epochs 0..98 get 1, epoch 99 gets 100/101, and the last, epoch 199, runs at
// 0, as the reference's does. Past the end the factor stays 0.
class LinearDecaySchedule : public Schedule {
 public:
  LinearDecaySchedule(int constant_epochs, int decay_epochs);
  double factor(int epoch) const override;

 private:
  int constant_epochs_;
  int decay_epochs_;
};

}  // namespace pixgrad::optim
