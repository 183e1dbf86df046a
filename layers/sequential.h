// Sequential: children "0", "1", ... applied in order.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include <pixgrad/layers/module.h>

namespace pixgrad::nn {

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  explicit Sequential(const std::vector<std::shared_ptr<Module>>& modules);

  void push_back(std::shared_ptr<Module> module);
  Tensor forward(const Tensor& input) override;

  size_t size() const { return modules_.size(); }
  const std::shared_ptr<Module>& operator[](size_t index) const;

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace pixgrad::nn
