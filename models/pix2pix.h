// The pix2pix model (Isola et al. 2016): a generator G and a discriminator D
// (models/networks.h), an Adam optimiser each, and a training step in the
// preset's update order (models/pix2pix_step.h). With the vanilla objective
//   G loss = lambda_L1 * mean|G(x) - y| + lambda_adv * mean(softplus(-D(x, G(x))))
//   D loss = mean(softplus(-D(x, y))) + mean(softplus(D(x, G(x))))
// (models/gan.h has the others; the paper preset halves D's loss).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include <pixgrad/distributed/gradient_average.h>
#include <pixgrad/layers/module.h>
#include <pixgrad/models/discriminator.h>
#include <pixgrad/models/pix2pix_options.h>
#include <pixgrad/models/pix2pix_step.h>
#include <pixgrad/optim/optimizer.h>

namespace pixgrad::models {

class Pix2Pix {
 public:
  // Called in train_step after each backward pass, just before that
  // network's optimiser update, while its parameters' .grad hold this step's
  // gradients: for reading or changing them (logging, clipping, comparing
  // devices). It may replace or remove itself, but must not start another
  // step. If it throws, the step ends there and the exception propagates:
  // updates made earlier in the step stay (the paper preset updates D
  // before G), so treat the model as mid-step.
  using BeforeUpdate = std::function<void(Network network, nn::Module& module)>;

  explicit Pix2Pix(const Pix2PixOptions& options);

  // One optimisation step on a batch (input x, target y), [N, C, H, W] each.
  StepLosses train_step(const Tensor& input, const Tensor& target);
  // The same step, queued without reading anything back: its losses stay on
  // the device, packed as StepContext::pack (StepContext::unpack reads them).
  // What a captured step runs (models/graphed_step.h), so it refuses what a
  // capture cannot hold: data parallelism, a before-update hook, timing.
  Tensor enqueue_step(const Tensor& input, const Tensor& target);
  // Whether enqueue_step's work is the same at every call, so a capture of
  // it can be replayed: no averaging across ranks, no hook, no timing, and a
  // loss scale of 1 (a graph would keep any other value).
  bool can_capture() const { return !average_gradients_ && !before_update_ && !timing_ && loss_scale_ == 1; }
  // G(x) without recording a graph, in G's current train/eval mode.
  Tensor translate(const Tensor& input);

  // Times each phase of train_step (synchronising the device between
  // phases, so only for benchmarks); see last_phase_times().
  void set_timing(bool on) { timing_ = on; }
  const PhaseTimes& last_phase_times() const { return phase_times_; }

  void to(Device device);
  Device device() const { return device_; }
  void set_learning_rate(double lr);
  // Data-parallel training: each update first replaces the gradients by
  // their mean over the communicator's ranks (before the hook sees them).
  // Every rank must then run the same steps; nullptr trains alone.
  void set_data_parallel(std::shared_ptr<distributed::Communicator> communicator);
  // Multiplies the losses before their backward passes from the next step
  // on (a rank's share of the global batch, see distributed/gradient_average.h).
  void set_loss_scale(double scale);
  // Replaces the hook (an empty function removes it).
  void set_before_update(BeforeUpdate hook) { before_update_ = std::move(hook); }

  // Everything a checkpoint needs: "G.*", "D.*", "optimizer_G.*", "optimizer_D.*".
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& state);

  const Pix2PixOptions& options() const { return options_; }
  UnetBase& generator() { return *generator_; }
  Discriminator& discriminator() { return *discriminator_; }

 private:
  // StepContext::backward and update.
  void backward(Network network, const Tensor& loss, bool retain_graph);
  void update(Network network);
  nn::Module& network(Network which);
  void check_batch(const Tensor& input, const Tensor& target) const;
  // What a step works on; puts both networks in training mode.
  StepContext context();

  Pix2PixOptions options_;
  std::shared_ptr<UnetBase> generator_;
  std::shared_ptr<Discriminator> discriminator_;
  std::unique_ptr<optim::Adam> optimizer_g_;
  std::unique_ptr<optim::Adam> optimizer_d_;
  std::unique_ptr<Pix2PixStep> step_;
  Device device_ = Device::cpu();
  bool timing_ = false;
  PhaseTimes phase_times_;
  BeforeUpdate before_update_;
  std::unique_ptr<distributed::GradientAverage> average_gradients_;
  bool averaged_[2] = {false, false};  // per Network: by its last backward, for its next update
  double loss_scale_ = 1;
};

}  // namespace pixgrad::models
