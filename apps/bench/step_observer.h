// Watches one real pix2pix training step and reports every convolution it
// ran: its name in the model ("G.down3", "D.layer1"), its input extent, and
// how many times the step ran each of its three passes.
//
// A forward hook (layers/forward_hook.h) sees each convolution's forward
// call and wraps the output in an identity node whose backward counts the
// gradients that flow back through that call. The counting rule is the
// autograd engine's (core/autograd.h): the convolution's backward computes
// the input gradient when the input required a gradient at forward time and
// still does (no unchain_backward since), and the weight gradient when the
// weight did at forward time (not while frozen). A norm module whose
// input is a convolution's output marks that convolution as normed.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/tensor.h>
#include <pixgrad/layers/conv.h>
#include <pixgrad/layers/forward_hook.h>
#include <pixgrad/layers/normalization.h>
#include <pixgrad/models/pix2pix.h>

#include "conv_layer.h"

namespace pixgrad::bench {

struct ObservedConv {
  std::string name;  // "G." or "D." and the module's dotted name
  bool transposed = false;
  int64_t height = 0, width = 0;  // of the input
  bool norm = false;              // a norm module ran on its output
  PassCounts passes;
};

// The convolutions in the order of their first forward call.
inline std::vector<ObservedConv> observe_step(models::Pix2Pix& model, const Tensor& input, const Tensor& target) {
  std::map<const nn::Module*, std::string> names;
  for (const auto& [name, module] : model.generator().named_modules()) names[module.get()] = "G." + name;
  for (const auto& [name, module] : model.discriminator().named_modules()) names[module.get()] = "D." + name;

  // Shared with the counting nodes, which live in the step's graph.
  const auto observed = std::make_shared<std::vector<ObservedConv>>();
  std::map<const nn::Module*, size_t> index;
  const TensorImpl* last_conv_output = nullptr;
  size_t last_conv = 0;
  const nn::ForwardHookGuard hook([&](const nn::Module& module, const Tensor& in, const Tensor& out) -> Tensor {
    if (const auto* conv = dynamic_cast<const nn::ConvBase*>(&module)) {
      const auto [entry, added] = index.emplace(&module, observed->size());
      const size_t i = entry->second;
      if (added) {
        ObservedConv seen;
        seen.name = names.at(&module);
        seen.transposed = dynamic_cast<const nn::ConvTranspose2d*>(&module) != nullptr;
        seen.height = in.size(2);
        seen.width = in.size(3);
        observed->push_back(seen);
      }
      ++(*observed)[i].passes.forward;
      const bool data = in.requires_grad(), weight = conv->weight.requires_grad();
      const Tensor counted = record(
          "observe_step", out.detach(), {out},
          [observed, i, data, weight, input = in](const Tensor& g, const BackwardContext&) {
            // The input may have been cut from the graph since the forward.
            (*observed)[i].passes.backward_data += data && input.requires_grad();
            (*observed)[i].passes.backward_weight += weight;
            return std::vector<Tensor>{g};
          });
      last_conv_output = counted.impl();
      last_conv = i;
      return counted;
    }
    if (dynamic_cast<const nn::NormBase*>(&module) != nullptr && in.impl() == last_conv_output)
      (*observed)[last_conv].norm = true;
    return out;
  });
  model.train_step(input, target);
  return *observed;
}

}  // namespace pixgrad::bench
