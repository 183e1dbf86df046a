#include <pixgrad/layers/module.h>

#include <set>
#include <sstream>
#include <unordered_set>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/error.h>

namespace pixgrad::nn {

namespace {

// Points `tensor`'s own TensorImpl at a copy on `device` in `dtype`, so that
// every handle to it sees the change.
void retarget(const Tensor& tensor, Device device, DType dtype) {
  if (tensor.device() == device && tensor.dtype() == dtype) return;
  const Tensor moved = tensor.dtype() == dtype ? tensor.to(device) : tensor.to(Device::cpu()).to(dtype).to(device);
  tensor.impl()->storage = moved.impl()->storage;
  tensor.impl()->offset = moved.impl()->offset;
  tensor.impl()->dtype = dtype;
  if (tensor.impl()->grad) retarget(Tensor(tensor.impl()->grad), device, dtype);
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "'" : ", '") + name + "'";
  return out;
}

}  // namespace

Module::Module(std::string name) : name_(std::move(name)) {}

Tensor Module::forward(const Tensor&) { fail("Module::forward not implemented for ", name_); }

void Module::check_new_name(const std::string& name) const {
  PIXGRAD_CHECK(!name.empty() && name.find('.') == std::string::npos, name_, ": invalid member name '", name,
                "' (must be non-empty, without dots)");
  bool taken = false;
  for (const auto& entry : parameters_) taken |= entry.first == name;
  for (const auto& entry : buffers_) taken |= entry.first == name;
  for (const auto& entry : children_) taken |= entry.first == name;
  PIXGRAD_CHECK(!taken, name_, ": '", name, "' is already registered");
}

Tensor Module::register_parameter(const std::string& name, Tensor tensor, bool requires_grad) {
  check_new_name(name);
  PIXGRAD_CHECK(tensor.defined(), name_, ": parameter '", name, "' is undefined");
  tensor.set_requires_grad(requires_grad);
  parameters_.emplace_back(name, tensor);
  return tensor;
}

Tensor Module::register_buffer(const std::string& name, Tensor tensor) {
  check_new_name(name);
  PIXGRAD_CHECK(tensor.defined(), name_, ": buffer '", name, "' is undefined");
  buffers_.emplace_back(name, tensor);
  return tensor;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name);
  PIXGRAD_CHECK(module != nullptr, name_, ": child module '", name, "' is null");
  children_.emplace_back(name, std::move(module));
}

void Module::collect(NamedTensors Module::*member, const std::string& prefix, bool recurse, NamedTensors& out) const {
  for (const auto& [name, tensor] : this->*member) out.emplace_back(prefix + name, tensor);
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect(member, prefix + name + ".", true, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  NamedTensors out;
  collect(&Module::parameters_, "", recurse, out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect(&Module::buffers_, "", recurse, out);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  // Each tensor once, as in PyTorch: a module used twice (shared weights)
  // must not be stepped twice by an optimiser.
  std::vector<Tensor> out;
  std::unordered_set<const TensorImpl*> seen;
  for (auto& entry : named_parameters(recurse))
    if (seen.insert(entry.second.impl()).second) out.push_back(entry.second);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const { return children_; }

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() const {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  for (const auto& [name, child] : children_) {
    out.emplace_back(name, child);
    for (auto& [descendant, module] : child->named_modules()) out.emplace_back(name + "." + descendant, module);
  }
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& entry : children_) entry.second->train(on);
}

Module::NamedTensors Module::named_state() const {
  NamedTensors state = named_parameters();
  collect(&Module::buffers_, "", true, state);
  return state;
}

void Module::to(Device device) {
  for (const auto& [name, tensor] : named_state()) retarget(tensor, device, tensor.dtype());
}

void Module::to(DType dtype) {
  for (const auto& [name, tensor] : named_state()) retarget(tensor, tensor.device(), dtype);
}

void Module::zero_grad() {
  for (const Tensor& parameter : parameters()) parameter.zero_grad();
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> state;
  for (const auto& [name, tensor] : named_state())
    state[name] = tensor.is_cpu() ? tensor.clone() : tensor.to(Device::cpu());
  return state;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  NamedTensors targets = named_state();

  std::vector<std::string> missing, unexpected;
  std::set<std::string> known;
  for (const auto& [key, target] : targets) {
    known.insert(key);
    const auto found = state.find(key);
    if (found == state.end()) {
      missing.push_back(key);
      continue;
    }
    const Tensor& source = found->second;
    PIXGRAD_CHECK(source.defined(), name_, "::load_state_dict: '", key, "' is undefined in the state");
    PIXGRAD_CHECK(source.shape() == target.shape(), name_, "::load_state_dict: '", key, "' has shape ",
                  shape_str(source.shape()), " in the state but ", shape_str(target.shape()), " in the module");
  }
  for (const auto& entry : state)
    if (!known.count(entry.first)) unexpected.push_back(entry.first);
  if (strict && (!missing.empty() || !unexpected.empty())) {
    std::ostringstream message;
    message << name_ << "::load_state_dict:";
    if (!missing.empty()) message << " missing keys " << join(missing) << (unexpected.empty() ? "" : ";");
    if (!unexpected.empty()) message << " unexpected keys " << join(unexpected);
    fail(message.str());
  }

  NoGradGuard no_grad;
  for (auto& [key, target] : targets) {
    const auto found = state.find(key);
    if (found == state.end()) continue;
    Tensor source = found->second;
    if (source.dtype() != target.dtype()) source = source.to(Device::cpu()).to(target.dtype());
    target.copy_(source);
  }
}

}  // namespace pixgrad::nn
