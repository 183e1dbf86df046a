#include <pixgrad/models/chainer_step.h>

#include <pixgrad/core/ops.h>
#include <pixgrad/models/gan.h>

namespace pixgrad::models {

LossTensors ChainerStep::enqueue(const StepContext& c, const Tensor& input, const Tensor& target) {
  PhaseClock clock(c);
  const Tensor fake = c.generator.forward(input);
  clock.lap(&PhaseTimes::g_forward);
  const Tensor logits_fake = c.discriminator.forward(input, fake);
  const Tensor logits_real = c.discriminator.forward(input, target);

  const Tensor loss_g_adv = generator_loss(c.options.objective, logits_fake);
  const Tensor loss_g_l1 = l1_loss(fake, target);
  const Tensor loss_g = c.weighted_generator_loss(loss_g_adv, loss_g_l1);
  const DiscriminatorLoss loss_d = discriminator_loss(c.options.objective, logits_real, logits_fake);
  const Tensor loss_d_total = loss_d.total();
  clock.lap(&PhaseTimes::d_forward_backward);

  // G: backpropagate through D into G, keeping D's graph for D's own update.
  c.optimizer_g.zero_grad();
  c.backward(Network::Generator, loss_g, /*retain_graph=*/true);
  clock.lap(&PhaseTimes::g_backward);
  c.update(Network::Generator);
  clock.lap(&PhaseTimes::optimizer);

  // D: the original clears D's gradients (which the G loss also reached) and
  // cuts the graph at G(x) (unchain_backward), then backpropagates D's loss.
  c.optimizer_d.zero_grad();
  fake.unchain_backward();
  c.backward(Network::Discriminator, loss_d_total, false);
  clock.lap(&PhaseTimes::d_forward_backward);
  c.update(Network::Discriminator);
  clock.lap(&PhaseTimes::optimizer);

  return {loss_g, loss_g_adv, loss_g_l1, loss_d_total, loss_d.real, loss_d.fake};
}

}  // namespace pixgrad::models
