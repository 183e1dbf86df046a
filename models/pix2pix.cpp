#include <pixgrad/models/pix2pix.h>

#include <chrono>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>

namespace pixgrad::models {

namespace {

void set_requires_grad(nn::Module& module, bool requires_grad) {
  for (Tensor& parameter : module.parameters()) parameter.set_requires_grad(requires_grad);
}

// Freezes a module's parameters for its lifetime, also when the step throws.
class FrozenParameters {
 public:
  explicit FrozenParameters(nn::Module& module) : module_(module) { set_requires_grad(module_, false); }
  ~FrozenParameters() { set_requires_grad(module_, true); }
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  nn::Module& module_;
};

// mean(softplus(-logits)) pushes logits up ("real"); mean(softplus(logits)) down.
Tensor adversarial_loss(const Tensor& logits, bool real) { return mean(softplus(real ? neg(logits) : logits)); }

// Adds the time since the last lap to a phase, when timing is on.
class PhaseClock {
 public:
  PhaseClock(bool on, Device device, PhaseTimes& times) : on_(on), device_(device) {
    if (on_) times = PhaseTimes();
    last_ = std::chrono::steady_clock::now();
  }
  void lap(double& phase) {
    if (!on_) return;
    synchronize(device_);
    const auto now = std::chrono::steady_clock::now();
    phase += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  bool on_;
  Device device_;
  std::chrono::steady_clock::time_point last_;
};

// The step's six loss tensors and both optimisers' non-finite-gradient
// flags, read back to the host in one copy (one device synchronisation).
StepLosses read_losses(const Tensor& g_total, const Tensor& g_adv, const Tensor& g_l1, const Tensor& d_total,
                       const Tensor& d_real, const Tensor& d_fake, const Tensor& g_nonfinite,
                       const Tensor& d_nonfinite) {
  NoGradGuard no_grad;
  std::vector<Tensor> scalars;
  for (const Tensor& value : {g_total, g_adv, g_l1, d_total, d_real, d_fake, g_nonfinite, d_nonfinite})
    scalars.push_back(value.reshape({1}));
  const std::vector<double> v = concat(scalars, 0).to_double_vector();
  return StepLosses{v[0], v[1], v[2], v[3], v[4], v[5], v[6] == 0, v[7] == 0};
}

std::map<std::string, Tensor> prefixed(const std::map<std::string, Tensor>& state, const std::string& prefix) {
  std::map<std::string, Tensor> result;
  for (const auto& [name, tensor] : state) result.emplace(prefix + name, tensor);
  return result;
}

std::map<std::string, Tensor> with_prefix(const std::map<std::string, Tensor>& state, const std::string& prefix) {
  std::map<std::string, Tensor> result;
  for (const auto& [name, tensor] : state)
    if (name.compare(0, prefix.size(), prefix) == 0) result.emplace(name.substr(prefix.size()), tensor);
  return result;
}

}  // namespace

bool StepLosses::finite() const { return describe_nonfinite().empty(); }

std::string StepLosses::describe_nonfinite() const {
  std::string text;
  const auto add = [&](const std::string& part) { text += (text.empty() ? "" : ", ") + part; };
  const std::pair<const char*, double> losses[] = {{"loss_G", g_total},      {"loss_G_adv", g_adv},
                                                   {"loss_L1", g_l1},        {"loss_D", d_total},
                                                   {"loss_D_real", d_real}, {"loss_D_fake", d_fake}};
  for (const auto& [name, value] : losses)
    if (!std::isfinite(value)) add(std::string(name) + " " + (std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf"));
  if (!g_gradients_finite) add("G's gradients");
  if (!d_gradients_finite) add("D's gradients");
  return text;
}

Pix2PixOptions Pix2PixOptions::for_preset(Preset preset, int64_t input_channels, int64_t output_channels) {
  Pix2PixOptions options;
  options.preset = preset;
  options.generator = UnetOptions::for_preset(preset, input_channels, output_channels);
  options.discriminator = PatchGanOptions::for_preset(preset, input_channels, output_channels);
  options.adam.lr = 2e-4;
  options.adam.beta1 = 0.5;
  options.adam.beta2 = 0.999;
  options.adam.eps = 1e-8;
  if (preset == Preset::Chainer) {
    options.adam.weight_decay = 1e-5;  // the original trainer's WeightDecay hook
    options.adam.placement = optim::EpsilonPlacement::Chainer;
  }
  return options;
}

Pix2Pix::Pix2Pix(const Pix2PixOptions& options)
    : options_(options),
      generator_(std::make_shared<UnetGenerator>(options.generator)),
      discriminator_(std::make_shared<PatchGanDiscriminator>(options.discriminator)),
      optimizer_g_(std::make_unique<optim::Adam>(generator_->parameters(), options.adam)),
      optimizer_d_(std::make_unique<optim::Adam>(discriminator_->parameters(), options.adam)) {
  PIXGRAD_CHECK(options.preset == options.generator.preset && options.preset == options.discriminator.preset,
                "Pix2Pix: generator, discriminator and step must use the same preset");
}

StepLosses Pix2Pix::train_step(const Tensor& input, const Tensor& target) {
  PIXGRAD_CHECK(input.device() == device_ && target.device() == device_, "pix2pix step: batch on ",
                input.device().str(), "/", target.device().str(), " but the model is on ", device_.str());
  PIXGRAD_CHECK(target.dim() == 4 && target.size(1) == options_.generator.output_channels, "pix2pix step: target ",
                shape_str(target.shape()), " is not [N, ", options_.generator.output_channels, ", H, W]");
  generator_->train();
  discriminator_->train();
  return options_.preset == Preset::Paper ? step_paper(input, target) : step_chainer(input, target);
}

StepLosses Pix2Pix::step_paper(const Tensor& input, const Tensor& target) {
  PhaseClock clock(timing_, device_, phase_times_);
  const Tensor fake = generator_->forward(input);
  clock.lap(phase_times_.g_forward);

  // D: fake (detached) first, then real — the reference's order, which also
  // fixes the order of the running-statistics updates.
  optimizer_d_->zero_grad();
  const Tensor loss_d_fake = adversarial_loss(discriminator_->forward(input, fake.detach()), false);
  const Tensor loss_d_real = adversarial_loss(discriminator_->forward(input, target), true);
  const Tensor loss_d = mul(add(loss_d_fake, loss_d_real), 0.5);
  loss_d.backward();
  clock.lap(phase_times_.d_forward_backward);
  update(Network::Discriminator);
  clock.lap(phase_times_.optimizer);

  // G against the updated D, whose parameters get no gradient.
  const FrozenParameters frozen(*discriminator_);
  optimizer_g_->zero_grad();
  const Tensor loss_g_adv = adversarial_loss(discriminator_->forward(input, fake), true);
  const Tensor loss_g_l1 = l1_loss(fake, target);
  const Tensor loss_g = generator_loss(loss_g_adv, loss_g_l1);
  clock.lap(phase_times_.d_forward_backward);
  loss_g.backward();
  clock.lap(phase_times_.g_backward);
  update(Network::Generator);
  clock.lap(phase_times_.optimizer);

  return read_losses(loss_g, loss_g_adv, loss_g_l1, loss_d, loss_d_real, loss_d_fake,
                     optimizer_g_->nonfinite_gradients(), optimizer_d_->nonfinite_gradients());
}

StepLosses Pix2Pix::step_chainer(const Tensor& input, const Tensor& target) {
  PhaseClock clock(timing_, device_, phase_times_);
  const Tensor fake = generator_->forward(input);
  clock.lap(phase_times_.g_forward);
  const Tensor logits_fake = discriminator_->forward(input, fake);
  const Tensor logits_real = discriminator_->forward(input, target);

  const Tensor loss_g_adv = adversarial_loss(logits_fake, true);
  const Tensor loss_g_l1 = l1_loss(fake, target);
  const Tensor loss_g = generator_loss(loss_g_adv, loss_g_l1);
  const Tensor loss_d_real = adversarial_loss(logits_real, true);
  const Tensor loss_d_fake = adversarial_loss(logits_fake, false);
  const Tensor loss_d = add(loss_d_real, loss_d_fake);
  clock.lap(phase_times_.d_forward_backward);

  // G: backpropagate through D into G, keeping D's graph for D's own update.
  optimizer_g_->zero_grad();
  loss_g.backward(Tensor(), /*retain_graph=*/true);
  clock.lap(phase_times_.g_backward);
  update(Network::Generator);
  clock.lap(phase_times_.optimizer);

  // D: the original clears D's gradients (which the G loss also reached) and
  // cuts the graph at G(x) (unchain_backward), then backpropagates D's loss.
  optimizer_d_->zero_grad();
  fake.unchain_backward();
  loss_d.backward();
  clock.lap(phase_times_.d_forward_backward);
  update(Network::Discriminator);
  clock.lap(phase_times_.optimizer);

  return read_losses(loss_g, loss_g_adv, loss_g_l1, loss_d, loss_d_real, loss_d_fake,
                     optimizer_g_->nonfinite_gradients(), optimizer_d_->nonfinite_gradients());
}

Tensor Pix2Pix::generator_loss(const Tensor& adversarial, const Tensor& l1) const {
  return add(mul(adversarial, options_.lambda_adv), mul(l1, options_.lambda_l1));
}

void Pix2Pix::update(Network network) {
  const bool generator = network == Network::Generator;
  // A copy: the hook may replace or remove itself while it runs.
  if (const BeforeUpdate hook = before_update_)
    hook(network, generator ? static_cast<nn::Module&>(*generator_) : *discriminator_);
  (generator ? optimizer_g_ : optimizer_d_)->step();
}

Tensor Pix2Pix::translate(const Tensor& input) {
  NoGradGuard no_grad;
  return generator_->forward(input.to(device_));
}

void Pix2Pix::to(Device device) {
  generator_->to(device);
  discriminator_->to(device);
  device_ = device;
}

void Pix2Pix::set_learning_rate(double lr) {
  optimizer_g_->set_lr(lr);
  optimizer_d_->set_lr(lr);
}

std::map<std::string, Tensor> Pix2Pix::state_dict() const {
  std::map<std::string, Tensor> state = prefixed(generator_->state_dict(), "G.");
  state.merge(prefixed(discriminator_->state_dict(), "D."));
  state.merge(optimizer_g_->state_dict("optimizer_G."));
  state.merge(optimizer_d_->state_dict("optimizer_D."));
  return state;
}

void Pix2Pix::load_state_dict(const std::map<std::string, Tensor>& state) {
  generator_->load_state_dict(with_prefix(state, "G."));
  discriminator_->load_state_dict(with_prefix(state, "D."));
  optimizer_g_->load_state_dict(state, "optimizer_G.");
  optimizer_d_->load_state_dict(state, "optimizer_D.");
}

}  // namespace pixgrad::models
