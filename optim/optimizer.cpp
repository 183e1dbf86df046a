#include <pixgrad/optim/optimizer.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <type_traits>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/dispatch.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/replay_values.h>
#include <pixgrad/kernels/cpu/adam.h>
#include <pixgrad/kernels/cpu/sgd.h>
#include <pixgrad/kernels/cuda/optim.h>

namespace pixgrad::optim {

namespace {

// The state tensor follows its parameter when a module was moved or
// converted in place after the optimiser was built.
void follow_parameter(Tensor& state, const Tensor& parameter) {
  if (state.dtype() != parameter.dtype()) state = state.to(Device::cpu()).to(parameter.dtype());
  if (state.device() != parameter.device()) state = state.to(parameter.device());
}

const Tensor& lookup(const std::map<std::string, Tensor>& state, const std::string& key, const Shape& shape) {
  const auto found = state.find(key);
  PIXGRAD_CHECK(found != state.end() && found->second.defined(), "optimizer load_state_dict: missing key '", key, "'");
  PIXGRAD_CHECK(found->second.shape() == shape, "optimizer load_state_dict: '", key, "' has shape ",
                shape_str(found->second.shape()), " in the state but ", shape_str(shape), " in the optimizer");
  return found->second;
}

}  // namespace

Optimizer::Optimizer(std::vector<Tensor> parameters, double lr, const std::vector<std::string>& state_names)
    : parameters_(std::move(parameters)), lr_(lr) {
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Tensor& parameter = parameters_[i];
    PIXGRAD_CHECK(parameter.defined() && parameter.is_leaf(), "optimizer: parameter ", i,
                  " is undefined or not a leaf");
    // Listed twice, a parameter would take two steps per step().
    for (size_t j = 0; j < i; ++j)
      PIXGRAD_CHECK(parameters_[j].impl() != parameter.impl(), "optimizer: parameter ", i,
                    " is parameter ", j, " again; list each parameter once");
    ParameterState state;
    for (const std::string& name : state_names) state.tensors.emplace_back(name, Tensor::zeros_like(parameter));
    states_.push_back(std::move(state));
  }
}

void Optimizer::step() {
  NoGradGuard no_grad;
  nonfinite_ = Tensor();
  std::vector<Update> updates;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Tensor& parameter = parameters_[i];
    Tensor grad = parameter.grad();
    if (!grad.defined()) continue;
    if (!nonfinite_.defined()) nonfinite_ = Tensor::zeros({1}, parameter.device(), parameter.dtype());
    ParameterState& state = states_[i];
    for (auto& entry : state.tensors) follow_parameter(entry.second, parameter);
    updates.push_back({parameter, std::move(grad), state});
  }
  CaptureSession* session = CaptureSession::current();
  replay_scalars_ = session && !updates.empty() ? capture_scalars(*session, updates) : nullptr;
  for (const Update& u : updates) ++u.state.step;
  if (!updates.empty()) update_all(updates, nonfinite_);
  replay_scalars_ = nullptr;
  if (!nonfinite_.defined() && !parameters_.empty())
    nonfinite_ = Tensor::zeros({1}, parameters_.front().device(), parameters_.front().dtype());
}

void Optimizer::update_all(const std::vector<Update>& updates, const Tensor& nonfinite) {
  for (const Update& u : updates) update(u.parameter, u.grad, u.state, nonfinite);
}

void* Optimizer::capture_scalars(CaptureSession&, const std::vector<Update>&) {
  fail("optimizer: only Adam can step inside a captured step");
}

void Optimizer::zero_grad() {
  for (const Tensor& parameter : parameters_) parameter.zero_grad();
}

std::map<std::string, Tensor> Optimizer::state_dict(const std::string& prefix) const {
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < states_.size(); ++i) {
    const std::string base = prefix + std::to_string(i) + ".";
    out[base + "step"] = Tensor::full({}, static_cast<double>(states_[i].step), Device::cpu(), DType::Float64);
    for (const auto& [name, tensor] : states_[i].tensors)
      out[base + name] = tensor.is_cpu() ? tensor.clone() : tensor.to(Device::cpu());
  }
  return out;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state, const std::string& prefix) {
  std::vector<int64_t> steps;
  for (size_t i = 0; i < states_.size(); ++i) {
    const std::string base = prefix + std::to_string(i) + ".";
    const double step = lookup(state, base + "step", {}).item();
    PIXGRAD_CHECK(step >= 0 && step == std::floor(step) && step < 9007199254740992.0, "optimizer load_state_dict: '",
                  base, "step' is ", step, ", not a step count");
    steps.push_back(static_cast<int64_t>(step));
    for (const auto& entry : states_[i].tensors) lookup(state, base + entry.first, entry.second.shape());
  }
  NoGradGuard no_grad;
  for (size_t i = 0; i < states_.size(); ++i) {
    const std::string base = prefix + std::to_string(i) + ".";
    states_[i].step = steps[i];
    for (auto& [name, tensor] : states_[i].tensors) {
      Tensor source = state.at(base + name);
      if (source.dtype() != tensor.dtype()) source = source.to(Device::cpu()).to(tensor.dtype());
      tensor.copy_(source);
    }
  }
}

// ---- Adam ----

Adam::Adam(std::vector<Tensor> parameters, AdamOptions adam_options)
    : Optimizer(std::move(parameters), adam_options.lr(), {"exp_avg", "exp_avg_sq"}), options(adam_options) {
  PIXGRAD_CHECK(options.lr() >= 0, "Adam: lr ", options.lr(), " must be >= 0");
  PIXGRAD_CHECK(options.beta1() >= 0 && options.beta1() < 1, "Adam: beta1 ", options.beta1(), " must be in [0, 1)");
  PIXGRAD_CHECK(options.beta2() >= 0 && options.beta2() < 1, "Adam: beta2 ", options.beta2(), " must be in [0, 1)");
  PIXGRAD_CHECK(options.eps() >= 0, "Adam: eps ", options.eps(), " must be >= 0");
  PIXGRAD_CHECK(options.weight_decay() >= 0, "Adam: weight_decay ", options.weight_decay(), " must be >= 0");
}

kernels::AdamStep Adam::kernel_step(int64_t step) const {
  return {lr(), options.beta1(), options.beta2(), options.eps(), options.weight_decay(), step, options.placement()};
}

void Adam::update(const Tensor& parameter, const Tensor& grad, ParameterState& state, const Tensor& nonfinite) {
  const kernels::AdamStep step = kernel_step(state.step);
  const Tensor& exp_avg = state.tensors[0].second;
  const Tensor& exp_avg_sq = state.tensors[1].second;
  const int64_t n = parameter.numel();
  run_kernel("Adam", parameter, [&](auto on, auto zero) {
    using T = decltype(zero);
    const auto* captured = static_cast<const kernels::AdamScalars<T>*>(replay_scalars());
    if constexpr (std::is_same_v<decltype(on), kernels::cuda::Gpu>)
      adam_update(on, step, parameter.data<T>(), grad.data<T>(), exp_avg.data<T>(), exp_avg_sq.data<T>(), n,
                  nonfinite.data<T>(), captured);
    else  // host memory: the values the replay wrote, read now
      adam_update(on, captured ? *captured : kernels::adam_scalars<T>(step), parameter.data<T>(), grad.data<T>(),
                  exp_avg.data<T>(), exp_avg_sq.data<T>(), n, nonfinite.data<T>());
  });
}

namespace {

// The step counts of one captured Adam step, and its scalars at each replay.
class AdamCounter : public ReplayCounter {
 public:
  using Write = std::function<void(int64_t step, void* value)>;
  AdamCounter(std::vector<int64_t*> steps, size_t bytes, Write write)
      : steps_(std::move(steps)), bytes_(bytes), write_(std::move(write)) {}
  size_t value_bytes() const override { return bytes_; }
  std::vector<uint64_t> position() const override {
    std::vector<uint64_t> p;
    for (const int64_t* step : steps_) p.push_back(static_cast<uint64_t>(*step));
    return p;
  }
  void set_position(const std::vector<uint64_t>& p) override {
    for (size_t i = 0; i < steps_.size(); ++i) *steps_[i] = static_cast<int64_t>(p[i]);
  }
  bool still_fits() const override {
    for (const int64_t* step : steps_)
      if (*step != *steps_.front()) return false;
    return true;
  }
  void advance(const std::vector<uint64_t>&, void* value) override {
    for (int64_t* step : steps_) ++*step;
    write_(*steps_.front(), value);  // the lr as it is now: a schedule's changes reach the replays
  }

 private:
  std::vector<int64_t*> steps_;
  size_t bytes_;
  Write write_;
};

}  // namespace

void* Adam::capture_scalars(CaptureSession& session, const std::vector<Update>& updates) {
  const Update& first = updates.front();
  std::vector<int64_t*> steps;
  for (const Update& u : updates) {
    PIXGRAD_CHECK(u.state.step == first.state.step && u.parameter.dtype() == first.parameter.dtype(),
                  "Adam: a captured step needs every updated parameter at one step count and of one dtype");
    steps.push_back(&u.state.step);
  }
  const bool single = first.parameter.dtype() == DType::Float32;
  const size_t bytes = single ? sizeof(kernels::AdamScalars<float>) : sizeof(kernels::AdamScalars<double>);
  auto write = [this, single](int64_t step, void* value) {
    if (single) {
      const auto scalars = kernels::adam_scalars<float>(kernel_step(step));
      std::memcpy(value, &scalars, sizeof scalars);
    } else {
      const auto scalars = kernels::adam_scalars<double>(kernel_step(step));
      std::memcpy(value, &scalars, sizeof scalars);
    }
  };
  return session.value_for(this, /*shared=*/false,
                           [&] { return std::make_unique<AdamCounter>(std::move(steps), bytes, write); });
}

void Adam::update_all(const std::vector<Update>& updates, const Tensor& nonfinite) {
  if (updates.empty()) return;
  // One launch takes float32 tensors of one CUDA device that share one step
  // count (they all do, unless some parameters had no gradient in a step).
  const Tensor& first = updates.front().parameter;
  bool together = single_launch_ && first.is_cuda() && nonfinite.device() == first.device();
  for (const Update& u : updates)
    together = together && u.parameter.device() == first.device() && u.parameter.dtype() == DType::Float32 &&
               u.grad.device() == first.device() && u.grad.dtype() == DType::Float32 &&
               u.state.step == updates.front().state.step;
  if (!together) return Optimizer::update_all(updates, nonfinite);
  std::vector<kernels::AdamTensor> tensors;
  for (const Update& u : updates)
    tensors.push_back({u.parameter.data<float>(), u.grad.data<float>(), u.state.tensors[0].second.data<float>(),
                       u.state.tensors[1].second.data<float>(), u.parameter.numel()});
  const kernels::AdamStep step = kernel_step(updates.front().state.step);
  run_kernel("Adam", first, [&](auto on, auto) {
    if constexpr (std::is_same_v<std::decay_t<decltype(on)>, kernels::cuda::Gpu>)
      adam_update_many(on, step, tensors, nonfinite.data<float>(),
                       static_cast<const kernels::AdamScalars<float>*>(replay_scalars()));
  });
}

// ---- SGD ----

SGD::SGD(std::vector<Tensor> parameters, SGDOptions sgd_options)
    : Optimizer(std::move(parameters), sgd_options.lr(),
                sgd_options.momentum() != 0 ? std::vector<std::string>{"momentum_buffer"}
                                            : std::vector<std::string>{}),
      options(sgd_options) {
  PIXGRAD_CHECK(options.lr() >= 0 && options.momentum() >= 0 && options.weight_decay() >= 0,
                "SGD: invalid options (lr ", options.lr(), ", momentum ", options.momentum(), ", weight_decay ",
                options.weight_decay(), ")");
}

void SGD::update(const Tensor& parameter, const Tensor& grad, ParameterState& state, const Tensor& nonfinite) {
  const kernels::SgdStep step{lr(), options.momentum(), options.weight_decay()};
  const int64_t n = parameter.numel();
  const Tensor buffer = state.tensors.empty() ? Tensor() : state.tensors[0].second;
  run_kernel("SGD", parameter, [&](auto on, auto zero) {
    using T = decltype(zero);
    sgd_update(on, step, parameter.data<T>(), grad.data<T>(), data_or_null<T>(buffer), n, nonfinite.data<T>());
  });
}

}  // namespace pixgrad::optim
