// The benchmarks' layer tables (apps/bench/pix2pix_layers.h), read off the
// real models by watching a training step, against the tables as they were
// written by hand from the architectures and update orders (docs/perf.md).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "apps/bench/pix2pix_layers.h"
#include <pixgrad/core/generator.h>

using namespace pixgrad;

namespace {

// "G.down3 256->512 4x4/2 @32 norm 1/1/1": label, bias, norm, passes per iteration.
std::string describe(const bench::ConvLayer& l) {
  const bench::PassCounts& c = l.per_iteration;
  return l.label() + (l.bias ? " bias" : "") + (l.norm ? " norm" : "") + " " + std::to_string(c.forward) + "/" +
         std::to_string(c.backward_data) + "/" + std::to_string(c.backward_weight);
}

std::vector<std::string> describe(const std::vector<bench::ConvLayer>& layers) {
  std::vector<std::string> lines;
  for (const bench::ConvLayer& l : layers) lines.push_back(describe(l));
  return lines;
}

const std::vector<std::string> kPaper = {
    "G.down0 3->64 4x4/2 @256 1/0/1",          "G.down1 64->128 4x4/2 @128 norm 1/1/1",
    "G.down2 128->256 4x4/2 @64 norm 1/1/1",   "G.down3 256->512 4x4/2 @32 norm 1/1/1",
    "G.down4 512->512 4x4/2 @16 norm 1/1/1",   "G.down5 512->512 4x4/2 @8 norm 1/1/1",
    "G.down6 512->512 4x4/2 @4 norm 1/1/1",    "G.down7 512->512 4x4/2 @2 1/1/1",
    "G.up7 512->512 4x4/2T @1 norm 1/1/1",     "G.up6 1024->512 4x4/2T @2 norm 1/1/1",
    "G.up5 1024->512 4x4/2T @4 norm 1/1/1",    "G.up4 1024->512 4x4/2T @8 norm 1/1/1",
    "G.up3 1024->256 4x4/2T @16 norm 1/1/1",   "G.up2 512->128 4x4/2T @32 norm 1/1/1",
    "G.up1 256->64 4x4/2T @64 norm 1/1/1",     "G.up0 128->3 4x4/2T @128 bias 1/1/1",
    "D.layer0 6->64 4x4/2 @256 bias 3/1/2",    "D.layer1 64->128 4x4/2 @128 norm 3/3/2",
    "D.layer2 128->256 4x4/2 @64 norm 3/3/2",  "D.layer3 256->512 4x4/1 @32 norm 3/3/2",
    "D.layer4 512->1 4x4/1 @31 bias 3/3/2",
};

const std::vector<std::string> kChainer = {
    "G.stem 12->64 3x3/1 @256 bias 1/0/1",
    "G.down1 64->128 4x4/2 @256 bias norm 1/1/1",
    "G.down2 128->256 4x4/2 @128 bias norm 1/1/1",
    "G.down3 256->512 4x4/2 @64 bias norm 1/1/1",
    "G.down4 512->512 4x4/2 @32 bias norm 1/1/1",
    "G.down5 512->512 4x4/2 @16 bias norm 1/1/1",
    "G.down6 512->512 4x4/2 @8 bias norm 1/1/1",
    "G.down7 512->512 4x4/2 @4 bias norm 1/1/1",
    "G.up0 512->512 4x4/2T @2 bias norm 1/1/1",
    "G.up1 1024->512 4x4/2T @4 bias norm 1/1/1",
    "G.up2 1024->512 4x4/2T @8 bias norm 1/1/1",
    "G.up3 1024->512 4x4/2T @16 bias norm 1/1/1",
    "G.up4 1024->256 4x4/2T @32 bias norm 1/1/1",
    "G.up5 512->128 4x4/2T @64 bias norm 1/1/1",
    "G.up6 256->64 4x4/2T @128 bias norm 1/1/1",
    "G.head 128->3 3x3/1 @256 bias 1/1/1",
    "D.condition_stream 12->32 4x4/2 @256 bias 2/0/3",
    "D.image_stream 3->32 4x4/2 @256 bias 2/1/3",
    "D.layer0 64->128 4x4/2 @128 bias norm 2/3/3",
    "D.layer1 128->256 4x4/2 @64 bias norm 2/3/3",
    "D.layer2 256->512 4x4/2 @32 bias norm 2/3/3",
    "D.layer3 512->1 3x3/1 @16 bias 2/3/3",
};

}  // namespace

TEST_CASE("the presets' layer tables are read off the real models and update orders", "[bench][models]") {
  Generator& random = default_generator();
  random.set_state(5, 123);
  const std::vector<bench::ConvLayer> paper = bench::preset_layers("paper", 16);
  const std::vector<bench::ConvLayer> chainer = bench::preset_layers("chainer", 1);
  CHECK(random.seed() == 5);  // the caller's random stream is left where it was
  CHECK(random.offset() == 123);

  CHECK(describe(paper) == kPaper);
  CHECK(describe(chainer) == kChainer);
  for (const bench::ConvLayer& l : paper) CHECK(l.batch == 16);
  for (const bench::ConvLayer& l : chainer) CHECK((l.batch == 1 && l.preset == "chainer" && l.width == l.height));

  // docs/perf.md's figures at 256x256.
  const bench::IterationCost paper_cost = bench::iteration_cost(paper);
  CHECK(paper_cost.conv_flops / 1e9 == Approx(1391.04).margin(0.005));
  CHECK(paper_cost.g_parameters == 54413955);
  CHECK(paper_cost.d_parameters == 2768705);
  const bench::IterationCost chainer_cost = bench::iteration_cost(chainer);
  CHECK(chainer_cost.conv_flops / 1e9 == Approx(171.80).margin(0.005));
  CHECK(chainer_cost.g_parameters == 54421635);
  CHECK(chainer_cost.d_parameters == 2767553);
}
