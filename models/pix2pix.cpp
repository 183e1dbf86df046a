#include <pixgrad/models/pix2pix.h>

#include <cmath>
#include <utility>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/error.h>
#include <pixgrad/models/networks.h>

namespace pixgrad::models {

namespace {

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

Pix2Pix::Pix2Pix(const Pix2PixOptions& options)
    : options_(options),
      generator_(make_generator(options.preset, options.generator)),
      discriminator_(make_discriminator(options.preset, options.discriminator)),
      optimizer_g_(std::make_unique<optim::Adam>(generator_->parameters(), options.adam)),
      optimizer_d_(std::make_unique<optim::Adam>(discriminator_->parameters(), options.adam)),
      step_(make_step(options.preset)) {}

StepLosses Pix2Pix::train_step(const Tensor& input, const Tensor& target) {
  check_batch(input, target);
  const StepContext c = context();
  return c.read(step_->enqueue(c, input, target));
}

Tensor Pix2Pix::enqueue_step(const Tensor& input, const Tensor& target) {
  check_batch(input, target);
  PIXGRAD_CHECK(can_capture(), "pix2pix step: a captured step cannot ",
                average_gradients_ ? "average gradients across ranks"
                : before_update_   ? "call a before-update hook"
                : timing_          ? "time its phases"
                                   : "scale its losses");
  const StepContext c = context();
  return c.pack(step_->enqueue(c, input, target));
}

void Pix2Pix::check_batch(const Tensor& input, const Tensor& target) const {
  PIXGRAD_CHECK(input.device() == device_ && target.device() == device_, "pix2pix step: batch on ",
                input.device().str(), "/", target.device().str(), " but the model is on ", device_.str());
  PIXGRAD_CHECK(target.dim() == 4 && target.size(1) == options_.generator.output_channels, "pix2pix step: target ",
                shape_str(target.shape()), " is not [N, ", options_.generator.output_channels, ", H, W]");
}

StepContext Pix2Pix::context() {
  generator_->train();
  discriminator_->train();
  averaged_[0] = averaged_[1] = false;  // a step that failed before its update leaves none for this one
  return StepContext{*generator_,
                     *discriminator_,
                     *optimizer_g_,
                     *optimizer_d_,
                     options_,
                     [this](Network network, const Tensor& loss, bool retain_graph) {
                       backward(network, loss, retain_graph);
                     },
                     [this](Network network) { update(network); },
                     timing_ ? &phase_times_ : nullptr,
                     device_};
}

nn::Module& Pix2Pix::network(Network which) {
  if (which == Network::Generator) return *generator_;
  return *discriminator_;
}

namespace {

const char* gradients_name(Network network) {
  return network == Network::Generator ? "G's gradients" : "D's gradients";
}

}  // namespace

void Pix2Pix::backward(Network network, const Tensor& loss, bool retain_graph) {
  const Tensor scaled = loss_scale_ == 1 ? loss : mul(loss, loss_scale_);
  if (!average_gradients_) return scaled.backward(Tensor(), retain_graph);
  const auto overlap = average_gradients_->during_backward(this->network(network).parameters(),
                                                           gradients_name(network));
  scaled.backward(Tensor(), retain_graph);
  overlap->finish();
  averaged_[static_cast<int>(network)] = true;
}

void Pix2Pix::update(Network network) {
  bool& averaged = averaged_[static_cast<int>(network)];
  if (average_gradients_ && !averaged) (*average_gradients_)(this->network(network).parameters(), gradients_name(network));
  averaged = false;
  nn::Module& module = this->network(network);
  const bool generator = network == Network::Generator;
  // A copy: the hook may replace or remove itself while it runs.
  if (const BeforeUpdate hook = before_update_)
    hook(network, module);
  (generator ? optimizer_g_ : optimizer_d_)->step();
}

void Pix2Pix::set_data_parallel(std::shared_ptr<distributed::Communicator> communicator) {
  average_gradients_ =
      communicator ? std::make_unique<distributed::GradientAverage>(std::move(communicator)) : nullptr;
}

void Pix2Pix::set_loss_scale(double scale) {
  PIXGRAD_CHECK(std::isfinite(scale) && scale >= 0, "pix2pix: the loss scale must be finite and >= 0, got ", scale);
  loss_scale_ = scale;
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
