// The U-Net and PatchGAN presets: shapes, parameter counts against the
// references' published totals, and the errors bad inputs get.
#include <catch2/catch.hpp>

#include <cmath>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/ops.h>
#include "gradcheck.h"
#include <pixgrad/models/chainer_discriminator.h>
#include <pixgrad/models/chainer_unet.h>
#include <pixgrad/models/networks.h>
#include <pixgrad/models/nlayer_discriminator.h>
#include <pixgrad/models/pixel_discriminator.h>
#include <pixgrad/models/unet.h>

using namespace pixgrad;
using namespace pixgrad::models;
using Catch::Matchers::Contains;

namespace {
int64_t parameter_count(const nn::Module& module) {
  int64_t count = 0;
  for (const Tensor& p : module.parameters()) count += p.numel();
  return count;
}
}  // namespace

TEST_CASE("paper presets have the reference's parameter counts", "[models]") {
  // The PyTorch reference prints 54.414 M for unet_256 and 2.769 M for the
  // 70x70 PatchGAN on 6 channels, both with batch norm.
  UnetGenerator generator(UnetOptions::for_preset(Preset::Paper, 3, 3));
  CHECK(parameter_count(generator) == Approx(54.414e6).margin(0.0005e6));
  NLayerDiscriminator discriminator(PatchGanOptions::for_preset(Preset::Paper, 3, 3));
  CHECK(parameter_count(discriminator) == Approx(2.769e6).margin(0.0005e6));
  UnetOptions unet_128 = UnetOptions::for_preset(Preset::Paper, 3, 3);
  unet_128.num_downs = 7;
  CHECK(parameter_count(UnetGenerator(unet_128)) == Approx(41.829e6).margin(0.0005e6));
}

TEST_CASE("generators map [N, C_in, H, W] to [N, C_out, H, W]", "[models]") {
  NoGradGuard no_grad;
  SECTION("paper, 6 downsamplings at 64x64, batch 2") {
    UnetOptions options = UnetOptions::for_preset(Preset::Paper, 3, 3);
    options.ngf = 4;
    options.num_downs = 6;
    UnetGenerator generator(options);
    const Tensor out = generator.forward(testing::random_tensor({2, 3, 64, 64}, 1, DType::Float32));
    CHECK(out.shape() == Shape{2, 3, 64, 64});
    for (double v : out.to_double_vector()) REQUIRE(std::abs(v) <= 1.0);  // tanh output
  }
  SECTION("chainer, 12-channel one-hot in, no tanh") {
    UnetOptions options = UnetOptions::for_preset(Preset::Chainer, 12, 3);
    options.ngf = 4;
    options.num_downs = 5;
    ChainerUnet generator(options);
    const Tensor out = generator.forward(testing::random_tensor({1, 12, 64, 64}, 2, DType::Float32));
    CHECK(out.shape() == Shape{1, 3, 64, 64});
  }
}

TEST_CASE("discriminators give one logit per patch", "[models]") {
  NoGradGuard no_grad;
  const Tensor x = testing::random_tensor({2, 3, 64, 64}, 3, DType::Float32);
  const Tensor y = testing::random_tensor({2, 3, 64, 64}, 4, DType::Float32);
  PatchGanOptions paper = PatchGanOptions::for_preset(Preset::Paper, 3, 3);
  paper.ndf = 8;
  // 64 -> 32 -> 16 -> 8 (stride 2) -> 7 -> 6 (stride 1, k4 p1)
  CHECK(NLayerDiscriminator(paper).forward(x, y).shape() == Shape{2, 1, 6, 6});
  paper.pixel = true;
  CHECK(PixelDiscriminator(paper).forward(x, y).shape() == Shape{2, 1, 64, 64});
  PatchGanOptions chainer = PatchGanOptions::for_preset(Preset::Chainer, 3, 3);
  chainer.ndf = 8;
  CHECK(ChainerDiscriminator(chainer).forward(x, y).shape() == Shape{2, 1, 4, 4});
}

TEST_CASE("models reject inputs of the wrong shape", "[models][errors]") {
  UnetOptions options = UnetOptions::for_preset(Preset::Paper, 3, 3);
  options.ngf = 2;
  options.num_downs = 5;
  UnetGenerator generator(options);
  CHECK_THROWS_WITH(generator.forward(Tensor::zeros({1, 3, 48, 40})), Contains("multiples of 32"));
  CHECK_THROWS_WITH(generator.forward(Tensor::zeros({1, 4, 64, 64})), Contains("[1, 4, 64, 64]"));
  PatchGanOptions d_options = PatchGanOptions::for_preset(Preset::Paper, 3, 3);
  d_options.ndf = 4;
  NLayerDiscriminator discriminator(d_options);
  CHECK_THROWS_WITH(discriminator.forward(Tensor::zeros({1, 3, 32, 32}), Tensor::zeros({1, 3, 16, 16})),
                    Contains("[1, 3, 16, 16]"));
  options.num_downs = 4;
  CHECK_THROWS_WITH(UnetGenerator(options), Contains("num_downs >= 5"));
}

TEST_CASE("every norm kind builds and runs in both presets", "[models]") {
  NoGradGuard no_grad;
  for (const NormKind norm : {NormKind::Batch, NormKind::Instance, NormKind::None}) {
    for (const Preset preset : {Preset::Paper, Preset::Chainer}) {
      INFO(to_string(preset) << ", norm " << to_string(norm));
      UnetOptions g = UnetOptions::for_preset(preset, 3, 3);
      g.ngf = 4;
      g.num_downs = 5;
      g.norm.kind = norm;
      PatchGanOptions d = PatchGanOptions::for_preset(preset, 3, 3);
      d.ndf = 4;
      d.norm.kind = norm;
      const Tensor x = testing::random_tensor({2, 3, 64, 64}, 9, DType::Float32);
      const Tensor y = make_generator(preset, g)->forward(x);
      CHECK(y.shape() == x.shape());
      CHECK(make_discriminator(preset, d)->forward(x, y).size(1) == 1);
    }
  }
}

TEST_CASE("the paper preset draws batch-norm weights from Normal(1, 0.02)", "[models]") {
  UnetGenerator generator(UnetOptions::for_preset(Preset::Paper, 3, 3));
  std::vector<double> weights;
  for (const auto& [name, tensor] : generator.named_parameters())
    if (name.find("_norm.weight") != std::string::npos)
      for (double v : tensor.to_double_vector()) weights.push_back(v);
  REQUIRE(weights.size() > 4000);
  double mean = 0, squares = 0;
  for (double v : weights) mean += v;
  mean /= weights.size();
  for (double v : weights) squares += (v - mean) * (v - mean);
  CHECK(mean == Approx(1.0).margin(0.002));
  CHECK(std::sqrt(squares / weights.size()) == Approx(0.02).epsilon(0.05));
  // The Chainer preset keeps the library default of ones.
  UnetOptions chainer = UnetOptions::for_preset(Preset::Chainer, 12, 3);
  chainer.ngf = 4;
  for (const auto& [name, tensor] : ChainerUnet(chainer).named_parameters())
    if (name.find("_norm.weight") != std::string::npos)
      for (double v : tensor.to_double_vector()) REQUIRE(v == 1.0);
}
