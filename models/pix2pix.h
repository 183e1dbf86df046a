// The pix2pix model and its training step (Isola et al. 2016):
//   G loss = lambda_L1 * mean|G(x) - y| + lambda_adv * mean(softplus(-D(x, G(x))))
//   D loss = mean(softplus(-D(x, y))) + mean(softplus(D(x, G(x))))
// with each preset's update order:
//   paper   — D first, on the detached G(x), its loss halved; then G against
//             the updated D (D's parameters frozen meanwhile).
//   chainer — one forward pass: D(x, G(x)) and D(x, y) computed once; G is
//             updated from it, then D from the same activations.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include <pixgrad/optim/optimizer.h>
#include <pixgrad/models/patchgan.h>
#include <pixgrad/models/unet.h>

namespace pixgrad::models {

struct Pix2PixOptions {
  Preset preset = Preset::Paper;
  UnetOptions generator;
  PatchGanOptions discriminator;
  double lambda_l1 = 100;
  double lambda_adv = 1;
  optim::AdamOptions adam;

  // Input/output channels: 3/3 for facades photos, 12/3 for CMP label maps.
  static Pix2PixOptions for_preset(Preset preset, int64_t input_channels, int64_t output_channels);
};

struct StepLosses {
  double g_total = 0;  // what G minimises
  double g_adv = 0;    // mean(softplus(-D(x, G(x)))), before lambda_adv
  double g_l1 = 0;     // mean|G(x) - y|, before lambda_L1
  double d_total = 0;  // what D minimises (halved in the paper preset)
  double d_real = 0;   // mean(softplus(-D(x, y)))
  double d_fake = 0;   // mean(softplus(D(x, G(x))))
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
  // G(x) without recording a graph, in G's current train/eval mode.
  Tensor translate(const Tensor& input);

  // Times each phase of train_step (synchronising the device between
  // phases, so only for benchmarks); see last_phase_times().
  void set_timing(bool on) { timing_ = on; }
  const PhaseTimes& last_phase_times() const { return phase_times_; }

  void to(Device device);
  Device device() const { return device_; }
  void set_learning_rate(double lr);
  // Replaces the hook (an empty function removes it).
  void set_before_update(BeforeUpdate hook) { before_update_ = std::move(hook); }

  // Everything a checkpoint needs: "G.*", "D.*", "optimizer_G.*", "optimizer_D.*".
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& state);

  const Pix2PixOptions& options() const { return options_; }
  UnetGenerator& generator() { return *generator_; }
  PatchGanDiscriminator& discriminator() { return *discriminator_; }

 private:
  StepLosses step_paper(const Tensor& input, const Tensor& target);
  StepLosses step_chainer(const Tensor& input, const Tensor& target);
  // lambda_adv * adversarial + lambda_L1 * l1
  Tensor generator_loss(const Tensor& adversarial, const Tensor& l1) const;
  // Runs the before-update hook, if any, then the network's optimiser.
  void update(Network network);

  Pix2PixOptions options_;
  std::shared_ptr<UnetGenerator> generator_;
  std::shared_ptr<PatchGanDiscriminator> discriminator_;
  std::unique_ptr<optim::Adam> optimizer_g_;
  std::unique_ptr<optim::Adam> optimizer_d_;
  Device device_ = Device::cpu();
  bool timing_ = false;
  PhaseTimes phase_times_;
  BeforeUpdate before_update_;
};

}  // namespace pixgrad::models
