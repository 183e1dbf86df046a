// A pix2pix training step: what it reports, where its time goes, and the
// interface of the presets' two update orders (models/paper_step.h,
// models/chainer_step.h), of which make_step picks one per preset.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <pixgrad/core/device.h>
#include <pixgrad/core/tensor.h>
#include <pixgrad/layers/module.h>
#include <pixgrad/models/discriminator.h>
#include <pixgrad/models/pix2pix_options.h>
#include <pixgrad/optim/optimizer.h>

namespace pixgrad::models {

struct StepLosses {
  double g_total = 0;  // what G minimises
  double g_adv = 0;    // the objective's G loss on D(x, G(x)) (vanilla: mean(softplus(-D(x, G(x))))), before lambda_adv
  double g_l1 = 0;     // mean|G(x) - y|, before lambda_L1
  double d_total = 0;  // what D minimises (halved in the paper preset)
  double d_real = 0;   // D's loss on D(x, y) (vanilla: mean(softplus(-D(x, y))))
  double d_fake = 0;   // D's loss on D(x, G(x)) (vanilla: mean(softplus(D(x, G(x)))))
  bool g_gradients_finite = true;  // no NaN or infinity among G's gradients this step
  bool d_gradients_finite = true;  // ... nor among D's

  // Every loss and every gradient finite: the step did not diverge.
  bool finite() const;
  // What was not finite, e.g. "loss_G nan, loss_D_fake inf, G's gradients"; "" if nothing.
  std::string describe_nonfinite() const;
};

// Where a training step's time goes, in seconds (filled when timing is on).
struct PhaseTimes {
  double g_forward = 0;           // G(x)
  double d_forward_backward = 0;  // D's forward passes, D's loss and its backward
  double g_backward = 0;          // G's loss backward (through D into G)
  double optimizer = 0;           // both Adam updates
  double total() const { return g_forward + d_forward_backward + g_backward + optimizer; }
};

// The network whose update is about to happen (see Pix2Pix::set_before_update).
enum class Network { Generator, Discriminator };

// A step's loss tensors, before they are read back to the host.
struct LossTensors {
  Tensor g_total, g_adv, g_l1, d_total, d_real, d_fake;
};

// What a step works on, lent to it by Pix2Pix::train_step for one call.
struct StepContext {
  nn::Module& generator;
  Discriminator& discriminator;
  optim::Optimizer& optimizer_g;
  optim::Optimizer& optimizer_d;
  const Pix2PixOptions& options;
  // Backpropagates the loss into `network`'s gradients (those of the other
  // network it reaches accumulate too), multiplied by the model's loss scale
  // (a data-parallel rank's share of the global batch; the losses reported
  // are not scaled). In data-parallel training the reduction of `network`'s
  // gradients across ranks overlaps the pass.
  std::function<void(Network network, const Tensor& loss, bool retain_graph)> backward;
  // Runs the model's before-update hook for `network`, then that network's
  // optimiser. Its gradients are averaged across ranks first, unless this
  // step's backward() for `network` already did: then they must come from
  // that pass alone (a plain backward after it would not be averaged).
  std::function<void(Network network)> update;
  PhaseTimes* phase_times = nullptr;  // where the phases go; nullptr when timing is off
  Device device;

  // lambda_adv * adversarial + lambda_L1 * l1
  Tensor weighted_generator_loss(const Tensor& adversarial, const Tensor& l1) const;
  // The losses and both optimisers' non-finite-gradient flags, read back to
  // the host in one copy (one device synchronisation).
  StepLosses read(const LossTensors& losses) const;
  // The same values in one tensor of 8 on the device (what read copies back),
  // and the losses from its values.
  Tensor pack(const LossTensors& losses) const;
  static StepLosses unpack(const std::vector<double>& packed);
};

// Adds the time since the last lap to a phase of context.phase_times,
// synchronising the device first; does nothing when timing is off.
class PhaseClock {
 public:
  explicit PhaseClock(const StepContext& context);
  void lap(double PhaseTimes::*phase);

 private:
  PhaseTimes* times_;
  Device device_;
  std::chrono::steady_clock::time_point last_;
};

// One optimisation step of both networks on a batch (input x, target y),
// in one update order. The networks are in training mode.
class Pix2PixStep {
 public:
  virtual ~Pix2PixStep() = default;
  // Queues the step's work; the losses stay on the device.
  virtual LossTensors enqueue(const StepContext& context, const Tensor& input, const Tensor& target) = 0;
  // Runs the step and reads its losses back.
  StepLosses run(const StepContext& context, const Tensor& input, const Tensor& target) {
    return context.read(enqueue(context, input, target));
  }
};

// PaperStep or ChainerStep.
std::unique_ptr<Pix2PixStep> make_step(Preset preset);

}  // namespace pixgrad::models
