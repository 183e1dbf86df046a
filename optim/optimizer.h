// Optimisers, in the PyTorch C++ frontend's vocabulary: construct with the
// parameters to update; zero_grad(), backward(), step(). Parameters whose
// .grad is undefined are skipped (and their step count does not advance).
// The arithmetic lives in kernels/cpu/adam.* and kernels/cpu/sgd.*.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <pixgrad/core/tensor.h>
#include <pixgrad/core/arg.h>
#include <pixgrad/kernels/optimizer_steps.h>

namespace pixgrad {
class CaptureSession;
}  // namespace pixgrad

namespace pixgrad::optim {

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // One update of every parameter that has a gradient; never recorded by autograd.
  void step();
  // A one-element tensor on the parameters' device (their dtype): 1 if a
  // gradient of the last step() held a NaN or an infinity, else 0. The check
  // rides along with the update kernels, and reading the flag is the only
  // synchronisation it needs (pix2pix reads it with the step's losses).
  // Undefined before the first step.
  const Tensor& nonfinite_gradients() const { return nonfinite_; }
  // Drops the .grad of every parameter.
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  const std::vector<Tensor>& parameters() const { return parameters_; }

  // The optimiser's state for checkpoints, as CPU copies: for parameter i (in
  // construction order) "<prefix><i>.step" (a float64 scalar: the number of
  // updates it received) and "<prefix><i>.<name>" for each state tensor
  // (Adam: exp_avg, exp_avg_sq; SGD with momentum: momentum_buffer).
  std::map<std::string, Tensor> state_dict(const std::string& prefix) const;
  // Restores what state_dict wrote; every key must be present with the right
  // shape (checked before anything is copied). Keys outside the optimiser's
  // own are ignored, so several optimisers can share one file.
  void load_state_dict(const std::map<std::string, Tensor>& state, const std::string& prefix);

 protected:
  struct ParameterState {
    int64_t step = 0;
    std::vector<std::pair<std::string, Tensor>> tensors;  // zeros shaped like the parameter
  };

  Optimizer(std::vector<Tensor> parameters, double lr, const std::vector<std::string>& state_names);
  // Updates parameter `parameter` (whose grad is defined) with `state`,
  // already on the parameter's device, its step count already advanced, and
  // raises `nonfinite` (see nonfinite_gradients) on a NaN or infinite gradient.
  virtual void update(const Tensor& parameter, const Tensor& grad, ParameterState& state, const Tensor& nonfinite) = 0;

  // One parameter's part of a step, as step() hands it to update_all.
  struct Update {
    const Tensor& parameter;
    Tensor grad;
    ParameterState& state;
  };
  // Updates every parameter of the step: update() on each, unless an
  // optimiser can do them all at once on their device.
  virtual void update_all(const std::vector<Update>& updates, const Tensor& nonfinite);
  // Inside a captured step (core/replay_values.h), before the step counts
  // advance: registers the counter behind this step's scalars with the
  // session and returns where the kernels read them. Only Adam can.
  virtual void* capture_scalars(CaptureSession& session, const std::vector<Update>& updates);
  // While update()/update_all() run inside a captured step: where the kernels
  // read the step's scalars (kernels::AdamScalars of the parameters' type);
  // nullptr otherwise.
  const void* replay_scalars() const { return replay_scalars_; }

 private:
  std::vector<Tensor> parameters_;
  std::vector<ParameterState> states_;
  double lr_;
  Tensor nonfinite_;
  const void* replay_scalars_ = nullptr;
};

using kernels::EpsilonPlacement;

// Built in libtorch's style, PyTorch's defaults unless set:
// `optim::AdamOptions(2e-4).beta1(0.5)`; `options.beta1()` reads one back.
class AdamOptions {
 public:
  explicit AdamOptions(double lr = 1e-3) : lr_(lr) {}
  PIXGRAD_ARG(double, lr);
  PIXGRAD_ARG(double, beta1) = 0.9;
  PIXGRAD_ARG(double, beta2) = 0.999;
  PIXGRAD_ARG(double, eps) = 1e-8;
  PIXGRAD_ARG(double, weight_decay) = 0;  // L2, added to the gradient
  PIXGRAD_ARG(EpsilonPlacement, placement) = EpsilonPlacement::PyTorch;
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> parameters, AdamOptions options = AdamOptions());

  AdamOptions options;  // options.lr() is the initial rate; lr() is the current one

  // CUDA parameters are updated in one launch for all of them (the default:
  // the same bits as one launch each, without a launch per tensor); false
  // launches once per tensor, which the tests compare it with.
  void set_single_launch(bool single) { single_launch_ = single; }

 protected:
  void update(const Tensor& parameter, const Tensor& grad, ParameterState& state, const Tensor& nonfinite) override;
  void update_all(const std::vector<Update>& updates, const Tensor& nonfinite) override;
  void* capture_scalars(CaptureSession& session, const std::vector<Update>& updates) override;

 private:
  // The kernels' arguments for a parameter at step count `step` (already advanced).
  kernels::AdamStep kernel_step(int64_t step) const;

  bool single_launch_ = true;
};

// `optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4)`.
class SGDOptions {
 public:
  explicit SGDOptions(double lr = 1e-3) : lr_(lr) {}
  PIXGRAD_ARG(double, lr);
  PIXGRAD_ARG(double, momentum) = 0;
  PIXGRAD_ARG(double, weight_decay) = 0;  // L2, added to the gradient
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> parameters, SGDOptions options = SGDOptions());

  SGDOptions options;

 protected:
  void update(const Tensor& parameter, const Tensor& grad, ParameterState& state, const Tensor& nonfinite) override;
};

}  // namespace pixgrad::optim
