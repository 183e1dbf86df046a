// ChainerStep: the original Chainer trainer's update order (updater.py).
// One forward pass: D(x, G(x)) and D(x, y) computed once; G updated from it
// (backpropagating through D, whose graph is kept), then D's gradients
// cleared, the graph cut at G(x) (unchain_backward) and D updated from the
// same activations.
#pragma once

#include <pixgrad/models/pix2pix_step.h>

namespace pixgrad::models {

class ChainerStep : public Pix2PixStep {
 public:
  LossTensors enqueue(const StepContext& context, const Tensor& input, const Tensor& target) override;
};

}  // namespace pixgrad::models
