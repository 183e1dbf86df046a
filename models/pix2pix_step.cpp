#include <pixgrad/models/pix2pix_step.h>

#include <cmath>
#include <utility>
#include <vector>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/models/chainer_step.h>
#include <pixgrad/models/paper_step.h>

namespace pixgrad::models {

bool StepLosses::finite() const { return describe_nonfinite().empty(); }

std::string StepLosses::describe_nonfinite() const {
  std::string text;
  const auto add = [&](const std::string& part) { text += (text.empty() ? "" : ", ") + part; };
  const std::pair<const char*, double> losses[] = {{"loss_G", g_total},      {"loss_G_adv", g_adv},
                                                   {"loss_L1", g_l1},        {"loss_D", d_total},
                                                   {"loss_D_real", d_real}, {"loss_D_fake", d_fake}};
  for (const auto& [name, value] : losses)
    if (!std::isfinite(value)) add(std::string(name) + " " + (std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf"));
  if (!g_gradients_finite) add("G's gradients");
  if (!d_gradients_finite) add("D's gradients");
  return text;
}

Tensor StepContext::weighted_generator_loss(const Tensor& adversarial, const Tensor& l1) const {
  return add(mul(adversarial, options.lambda_adv), mul(l1, options.lambda_l1));
}

StepLosses StepContext::read(const LossTensors& l) const { return unpack(pack(l).to_double_vector()); }

Tensor StepContext::pack(const LossTensors& l) const {
  NoGradGuard no_grad;
  std::vector<Tensor> scalars;
  for (const Tensor& value : {l.g_total, l.g_adv, l.g_l1, l.d_total, l.d_real, l.d_fake,
                              optimizer_g.nonfinite_gradients(), optimizer_d.nonfinite_gradients()})
    scalars.push_back(value.reshape({1}));
  return concat(scalars, 0);
}

StepLosses StepContext::unpack(const std::vector<double>& v) {
  PIXGRAD_CHECK(v.size() == 8, "pix2pix step: ", v.size(), " packed losses, expected 8");
  return StepLosses{v[0], v[1], v[2], v[3], v[4], v[5], v[6] == 0, v[7] == 0};
}

PhaseClock::PhaseClock(const StepContext& context)
    : times_(context.phase_times), device_(context.device), last_(std::chrono::steady_clock::now()) {
  if (times_) *times_ = PhaseTimes();
}

void PhaseClock::lap(double PhaseTimes::*phase) {
  if (!times_) return;
  synchronize(device_);
  const auto now = std::chrono::steady_clock::now();
  times_->*phase += std::chrono::duration<double>(now - last_).count();
  last_ = now;
}

std::unique_ptr<Pix2PixStep> make_step(Preset preset) {
  if (preset == Preset::Chainer) return std::make_unique<ChainerStep>();
  return std::make_unique<PaperStep>();
}

}  // namespace pixgrad::models
