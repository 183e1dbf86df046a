// PaperStep: the PyTorch reference's update order (pix2pix_model.py's
// optimize_parameters). D first, on (x, G(x) detached) and then (x, y), its
// loss halved; then G against the updated D, with D's parameters frozen.
#pragma once

#include <pixgrad/models/pix2pix_step.h>

namespace pixgrad::models {

class PaperStep : public Pix2PixStep {
 public:
  LossTensors enqueue(const StepContext& context, const Tensor& input, const Tensor& target) override;
};

}  // namespace pixgrad::models
