#include <pixgrad/models/gan.h>

#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>
#include <pixgrad/core/ops.h>

namespace pixgrad::models {

namespace {

Tensor mean_square(const Tensor& x) { return mean(mul(x, x)); }

Tensor loss_on_real(GanObjective objective, const Tensor& logits) {
  switch (objective) {
    case GanObjective::Vanilla: return mean(softplus(neg(logits)));
    case GanObjective::LSGAN: return mean_square(sub(logits, 1.0));
    case GanObjective::Hinge: return mean(relu(add(neg(logits), 1.0)));
    case GanObjective::WGANGP: return neg(mean(logits));
  }
  fail("GAN objective: invalid value ", static_cast<int>(objective));
}

Tensor loss_on_fake(GanObjective objective, const Tensor& logits) {
  switch (objective) {
    case GanObjective::Vanilla: return mean(softplus(logits));
    case GanObjective::LSGAN: return mean_square(logits);
    case GanObjective::Hinge: return mean(relu(add(logits, 1.0)));
    case GanObjective::WGANGP: return mean(logits);
  }
  fail("GAN objective: invalid value ", static_cast<int>(objective));
}

}  // namespace

GanObjective parse_gan_objective(const std::string& text) {
  if (text == "vanilla") return GanObjective::Vanilla;
  if (text == "lsgan") return GanObjective::LSGAN;
  if (text == "hinge") return GanObjective::Hinge;
  if (text == "wgangp") return GanObjective::WGANGP;
  fail("GAN objective: unknown '", io::printable(text), "' (expected vanilla, lsgan, hinge or wgangp)");
}

std::string to_string(GanObjective objective) {
  switch (objective) {
    case GanObjective::Vanilla: return "vanilla";
    case GanObjective::LSGAN: return "lsgan";
    case GanObjective::Hinge: return "hinge";
    case GanObjective::WGANGP: return "wgangp";
  }
  return "vanilla";
}

Tensor DiscriminatorLoss::total() const { return add(real, fake); }

DiscriminatorLoss discriminator_loss(GanObjective objective, const Tensor& real_logits, const Tensor& fake_logits) {
  return {loss_on_real(objective, real_logits), loss_on_fake(objective, fake_logits)};
}

Tensor generator_loss(GanObjective objective, const Tensor& fake_logits) {
  switch (objective) {
    case GanObjective::Vanilla: return mean(softplus(neg(fake_logits)));
    case GanObjective::LSGAN: return mean_square(sub(fake_logits, 1.0));
    case GanObjective::Hinge:
    case GanObjective::WGANGP: return neg(mean(fake_logits));
  }
  fail("GAN objective: invalid value ", static_cast<int>(objective));
}

}  // namespace pixgrad::models
