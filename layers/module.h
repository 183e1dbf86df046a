// Module: the base of every layer and model, in the PyTorch C++ frontend's
// vocabulary. A module owns named parameters (trained), named buffers (state
// that is saved but not trained, e.g. running statistics) and named child
// modules; names are joined with dots ("down.0.weight") in registration
// order, so state dicts line up with PyTorch's.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <pixgrad/core/tensor.h>
#include <pixgrad/core/arg.h>

namespace pixgrad::nn {

class Module {
 public:
  virtual ~Module() = default;
  Module(const Module&) = delete;  // copies would share tensors behind the members' backs
  Module& operator=(const Module&) = delete;

  // Throws "Module::forward not implemented for <name>" unless overridden.
  virtual Tensor forward(const Tensor& input);

  std::vector<Tensor> parameters(bool recurse = true) const;  // each tensor once, even if shared
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  // Every descendant (not the module itself) under its dotted name, depth
  // first in registration order: "down0", "block", "block.0", ...
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules() const;

  // Training mode (batch statistics, active dropout); applies to all descendants.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Moves every parameter and buffer (and any .grad) to `device`, or
  // converts it to `dtype`, in place: the tensors keep their identity, so
  // handles held by members or optimisers see the change.
  void to(Device device);
  void to(DType dtype);
  // Drops the .grad of every parameter.
  void zero_grad();

  // Parameters and buffers under their dotted names, as detached CPU copies.
  std::map<std::string, Tensor> state_dict() const;
  // Copies values in (from any device and floating dtype into the module's
  // tensors). Shapes must match; with `strict`, the keys must match exactly.
  // Everything is checked before anything is copied.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

  // The type name, e.g. "Conv2d".
  const std::string& name() const { return name_; }

 protected:
  explicit Module(std::string name);

  // Registers `tensor` (a leaf) as a parameter; returns the same handle.
  Tensor register_parameter(const std::string& name, Tensor tensor, bool requires_grad = true);
  Tensor register_buffer(const std::string& name, Tensor tensor);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 private:
  using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

  // Parameters, then buffers, under their dotted names.
  NamedTensors named_state() const;
  void check_new_name(const std::string& name) const;
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  // Appends this module's `NamedTensors` member (parameters_ or buffers_) and,
  // with `recurse`, its descendants', under `prefix`.
  void collect(NamedTensors Module::*member, const std::string& prefix, bool recurse, NamedTensors& out) const;

  std::string name_;
  bool training_ = true;
  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// std::make_shared for modules, for building networks in one expression:
// `nn::make<nn::Conv2d>(nn::Conv2dOptions(3, 64, 4).stride(2).padding(1))`.
template <typename M, typename... Args>
std::shared_ptr<M> make(Args&&... args) {
  return std::make_shared<M>(std::forward<Args>(args)...);
}

}  // namespace pixgrad::nn
