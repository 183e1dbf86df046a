#include <pixgrad/layers/sequential.h>

#include <string>

#include <pixgrad/core/error.h>
#include <pixgrad/layers/forward_hook.h>

namespace pixgrad::nn {

Sequential::Sequential(const std::vector<std::shared_ptr<Module>>& modules) : Sequential() {
  for (const auto& module : modules) push_back(module);
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  modules_.push_back(register_module(std::to_string(modules_.size()), std::move(module)));
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& module : modules_) x = module->forward(x);
  return apply_forward_hook(*this, input, x);
}

const std::shared_ptr<Module>& Sequential::operator[](size_t index) const {
  PIXGRAD_CHECK(index < modules_.size(), "Sequential: index ", index, " out of range for ", modules_.size(),
                " modules");
  return modules_[index];
}

}  // namespace pixgrad::nn
