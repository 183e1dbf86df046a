#include <pixgrad/models/paper_step.h>

#include <pixgrad/core/ops.h>
#include <pixgrad/layers/freeze.h>
#include <pixgrad/models/gan.h>

namespace pixgrad::models {

LossTensors PaperStep::enqueue(const StepContext& c, const Tensor& input, const Tensor& target) {
  PhaseClock clock(c);
  const Tensor fake = c.generator.forward(input);
  clock.lap(&PhaseTimes::g_forward);

  // D: fake (detached) first, then real — the reference's order, which also
  // fixes the order of the running-statistics updates.
  c.optimizer_d.zero_grad();
  const Tensor logits_fake = c.discriminator.forward(input, fake.detach());
  const Tensor logits_real = c.discriminator.forward(input, target);
  const DiscriminatorLoss loss_d = discriminator_loss(c.options.objective, logits_real, logits_fake);
  const Tensor loss_d_total = mul(add(loss_d.fake, loss_d.real), 0.5);
  c.backward(Network::Discriminator, loss_d_total, false);
  clock.lap(&PhaseTimes::d_forward_backward);
  c.update(Network::Discriminator);
  clock.lap(&PhaseTimes::optimizer);

  // G against the updated D, whose parameters get no gradient.
  const nn::FreezeGuard frozen(c.discriminator);
  c.optimizer_g.zero_grad();
  const Tensor loss_g_adv = generator_loss(c.options.objective, c.discriminator.forward(input, fake));
  const Tensor loss_g_l1 = l1_loss(fake, target);
  const Tensor loss_g = c.weighted_generator_loss(loss_g_adv, loss_g_l1);
  clock.lap(&PhaseTimes::d_forward_backward);
  c.backward(Network::Generator, loss_g, false);
  clock.lap(&PhaseTimes::g_backward);
  c.update(Network::Generator);
  clock.lap(&PhaseTimes::optimizer);

  return {loss_g, loss_g_adv, loss_g_l1, loss_d_total, loss_d.real, loss_d.fake};
}

}  // namespace pixgrad::models
