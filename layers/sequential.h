// Sequential: children "0", "1", ... applied in order.
#pragma once

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include <pixgrad/layers/module.h>

namespace pixgrad::nn {

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  explicit Sequential(const std::vector<std::shared_ptr<Module>>& modules);
  // The modules in order, e.g.
  //   nn::Sequential net(nn::make<nn::Conv2d>(nn::Conv2dOptions(3, 64, 4).stride(2).padding(1)),
  //                      nn::make<nn::LeakyReLU>(0.2));
  template <typename... Modules,
            typename = std::enable_if_t<(sizeof...(Modules) > 0) &&
                                        (std::is_convertible_v<Modules, std::shared_ptr<Module>> && ...)>>
  explicit Sequential(Modules&&... modules) : Sequential() {
    (push_back(std::forward<Modules>(modules)), ...);
  }

  void push_back(std::shared_ptr<Module> module);
  Tensor forward(const Tensor& input) override;

  size_t size() const { return modules_.size(); }
  const std::shared_ptr<Module>& operator[](size_t index) const;

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace pixgrad::nn
