// The public GAN building blocks (models/gan.h): each adversarial objective's
// value and gradient against a hand computation, their names, the freeze
// guard, and both pix2pix update orders with every objective.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <stdexcept>
#include <vector>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/generator.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/layers/activation.h>
#include <pixgrad/layers/conv.h>
#include <pixgrad/layers/normalization.h>
#include <pixgrad/layers/sequential.h>
#include <pixgrad/models/gan.h>
#include <pixgrad/models/pix2pix.h>

using namespace pixgrad;
using namespace pixgrad::models;
using Catch::Matchers::Contains;

namespace {

// Logits away from the kinks of relu(1 - r) and relu(1 + f), some on each side.
const std::vector<double> kReal = {2.0, -1.5, 0.25, 0.75, 1.5, -0.5};
const std::vector<double> kFake = {-2.0, 1.25, -0.5, 0.0, -1.5, 3.0};

// One objective term as a function of a single logit x, and its derivative;
// the loss is the mean over the logits.
struct Term {
  std::function<double(double)> value, derivative;
};

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
double softplus(double x) { return std::log1p(std::exp(x)); }

struct Expected {
  Term real, fake, generator;
};

Expected by_hand(GanObjective objective) {
  switch (objective) {
    case GanObjective::Vanilla:
      return {{[](double r) { return softplus(-r); }, [](double r) { return -sigmoid(-r); }},
              {[](double f) { return softplus(f); }, [](double f) { return sigmoid(f); }},
              {[](double f) { return softplus(-f); }, [](double f) { return -sigmoid(-f); }}};
    case GanObjective::LSGAN:
      return {{[](double r) { return (r - 1) * (r - 1); }, [](double r) { return 2 * (r - 1); }},
              {[](double f) { return f * f; }, [](double f) { return 2 * f; }},
              {[](double f) { return (f - 1) * (f - 1); }, [](double f) { return 2 * (f - 1); }}};
    case GanObjective::Hinge:
      return {{[](double r) { return std::max(0.0, 1 - r); }, [](double r) { return r < 1 ? -1.0 : 0.0; }},
              {[](double f) { return std::max(0.0, 1 + f); }, [](double f) { return f > -1 ? 1.0 : 0.0; }},
              {[](double f) { return -f; }, [](double) { return -1.0; }}};
    case GanObjective::WGANGP:
      return {{[](double r) { return -r; }, [](double) { return -1.0; }},
              {[](double f) { return f; }, [](double) { return 1.0; }},
              {[](double f) { return -f; }, [](double) { return -1.0; }}};
  }
  throw std::logic_error("unknown objective");
}

Tensor logits(const std::vector<double>& values) {
  return Tensor::from_vector(values, {1, 1, 2, 3}).set_requires_grad();
}

double mean_of(const Term& term, const std::vector<double>& x) {
  double total = 0;
  for (double v : x) total += term.value(v);
  return total / static_cast<double>(x.size());
}

// The loss's value, and its gradient w.r.t. the logits after backward.
void check_term(const Tensor& loss, const Tensor& x, const Term& term, const std::vector<double>& values) {
  CHECK(loss.numel() == 1);
  CHECK(loss.item() == Approx(mean_of(term, values)).epsilon(1e-12));
  loss.backward();
  const std::vector<double> grad = x.grad().to_double_vector();
  REQUIRE(grad.size() == values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    INFO("logit " << values[i]);
    CHECK(grad[i] == Approx(term.derivative(values[i]) / static_cast<double>(values.size())).epsilon(1e-12));
  }
}

int64_t frozen_count(const nn::Module& module) {
  int64_t count = 0;
  for (const Tensor& p : module.parameters()) count += p.requires_grad() ? 0 : 1;
  return count;
}

std::shared_ptr<nn::Sequential> small_network() {
  return nn::make<nn::Sequential>(nn::make<nn::Conv2d>(nn::Conv2dOptions(2, 4, 3).padding(1)),
                                  nn::make<nn::BatchNorm2d>(nn::BatchNorm2dOptions(4)), nn::make<nn::LeakyReLU>(0.2));
}

// A loss computed in float32 inside the step, against the same in double.
Approx near(double expected) { return Approx(expected).epsilon(1e-5).margin(1e-6); }

}  // namespace

TEST_CASE("each adversarial objective gives the hand-computed losses and gradients", "[gan]") {
  for (const GanObjective objective :
       {GanObjective::Vanilla, GanObjective::LSGAN, GanObjective::Hinge, GanObjective::WGANGP}) {
    INFO(to_string(objective));
    const Expected expected = by_hand(objective);
    {
      INFO("D's loss on real logits");
      const Tensor real = logits(kReal), fake = logits(kFake);
      check_term(discriminator_loss(objective, real, fake).real, real, expected.real, kReal);
      CHECK_FALSE(fake.grad().defined());  // the real part does not reach the fake logits
    }
    {
      INFO("D's loss on fake logits");
      const Tensor real = logits(kReal), fake = logits(kFake);
      check_term(discriminator_loss(objective, real, fake).fake, fake, expected.fake, kFake);
      CHECK_FALSE(real.grad().defined());
    }
    {
      INFO("G's loss");
      const Tensor fake = logits(kFake);
      check_term(generator_loss(objective, fake), fake, expected.generator, kFake);
    }
    const Tensor real = logits(kReal), fake = logits(kFake);
    const DiscriminatorLoss loss = discriminator_loss(objective, real, fake);
    CHECK(loss.total().item() ==
          Approx(mean_of(expected.real, kReal) + mean_of(expected.fake, kFake)).epsilon(1e-12));
  }
}

TEST_CASE("objectives go by the PyTorch reference's names", "[gan]") {
  for (const char* name : {"vanilla", "lsgan", "hinge", "wgangp"}) CHECK(to_string(parse_gan_objective(name)) == name);
  CHECK(parse_gan_objective("wgangp") == GanObjective::WGANGP);
  CHECK_THROWS_WITH(parse_gan_objective("wgan-gp"), Contains("'wgan-gp'") && Contains("vanilla, lsgan"));
}

TEST_CASE("FreezeGuard freezes a module's parameters for its scope", "[gan][freeze]") {
  const auto network = small_network();
  const int64_t parameters = static_cast<int64_t>(network->parameters().size());
  REQUIRE(parameters == 4);  // conv weight and bias, norm weight and bias
  REQUIRE(frozen_count(*network) == 0);

  SECTION("frozen inside, restored after") {
    {
      const nn::FreezeGuard frozen(*network);
      CHECK(frozen_count(*network) == parameters);
      // What the guard is for: gradients pass through to the input, not into the module.
      const Tensor input = Tensor::normal({2, 2, 4, 4}, 0, 1).set_requires_grad();
      sum(network->forward(input)).backward();
      CHECK(input.grad().defined());
      for (const Tensor& p : network->parameters()) CHECK_FALSE(p.grad().defined());
    }
    CHECK(frozen_count(*network) == 0);
  }
  SECTION("restored when an exception leaves the scope") {
    try {
      const nn::FreezeGuard frozen(*network);
      CHECK(frozen_count(*network) == parameters);
      throw std::runtime_error("step failed");
    } catch (const std::runtime_error&) {
    }
    CHECK(frozen_count(*network) == 0);
  }
  SECTION("a parameter frozen before stays frozen; nested guards unwind in order") {
    Tensor conv_bias = std::dynamic_pointer_cast<nn::Conv2d>((*network)[0])->bias;
    conv_bias.set_requires_grad(false);
    {
      const nn::FreezeGuard outer(*network);
      {
        const nn::FreezeGuard inner(*network);
        CHECK(frozen_count(*network) == parameters);
      }
      CHECK(frozen_count(*network) == parameters);
    }
    CHECK(frozen_count(*network) == 1);
    CHECK_FALSE(conv_bias.requires_grad());
  }
}

TEST_CASE("both pix2pix update orders report the objective's losses", "[gan][models]") {
  for (const Preset preset : {Preset::Paper, Preset::Chainer}) {
    for (const GanObjective objective :
         {GanObjective::Vanilla, GanObjective::LSGAN, GanObjective::Hinge, GanObjective::WGANGP}) {
      INFO(to_string(preset) << ", " << to_string(objective));
      Pix2PixOptions options = Pix2PixOptions::for_preset(preset, 3, 3);
      options.generator.ngf = 8;
      options.generator.num_downs = preset == Preset::Paper ? 5 : 4;
      options.generator.use_dropout = false;
      options.discriminator.ndf = 8;
      options.objective = objective;
      // Without dropout and with a zero learning rate, G and D compute the
      // same functions all through the step (training-mode norms use batch
      // statistics), so the logits seen here are the step's.
      options.adam.lr(0);
      manual_seed(11);
      Pix2Pix model(options);
      const Tensor x = Tensor::normal({2, 3, 32, 32}, 0, 1), y = Tensor::normal({2, 3, 32, 32}, 0, 1);
      std::vector<double> real, fake;
      double l1 = 0;
      {
        NoGradGuard no_grad;
        model.generator().train();
        model.discriminator().train();
        const Tensor generated = model.generator().forward(x);
        fake = model.discriminator().forward(x, generated).to_double_vector();
        real = model.discriminator().forward(x, y).to_double_vector();
        l1 = l1_loss(generated, y).item();
      }
      const Expected expected = by_hand(objective);
      const double d_real = mean_of(expected.real, real), d_fake = mean_of(expected.fake, fake);
      const double g_adv = mean_of(expected.generator, fake);

      const StepLosses losses = model.train_step(x, y);
      CHECK(losses.d_real == near(d_real));
      CHECK(losses.d_fake == near(d_fake));
      // The paper order halves D's loss, as the reference does for every objective.
      CHECK(losses.d_total == near((preset == Preset::Paper ? 0.5 : 1.0) * (d_real + d_fake)));
      CHECK(losses.g_adv == near(g_adv));
      CHECK(losses.g_l1 == near(l1));
      CHECK(losses.g_total == near(g_adv + options.lambda_l1 * l1));
    }
  }
}
