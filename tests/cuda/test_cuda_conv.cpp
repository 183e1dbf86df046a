// conv2d and conv_transpose2d on CUDA, for every kernel implementation,
// against the CPU ops: the output and the input, weight and bias gradients.
// First small odd shapes; then every convolution of the U-Net and PatchGAN
// presets at 256x256, batch 1 and 4, read off the real models.
#include <catch2/catch.hpp>

#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "compare.h"
#include "core/autograd.h"
#include "core/ops.h"
#include "kernels/cuda/conv2d.h"
#include "layers/conv.h"
#include "models/patchgan.h"
#include "models/unet.h"

using namespace pixgrad;
using namespace pixgrad::cuda_testing;
using kernels::cuda::ConvImpl;

namespace {

// A convolution output sums up to Cin*k*k = 16384 products (and a weight
// gradient up to N*H*W = 262144) in float, in a different order on each
// device and implementation; 1e-3 of the largest value allows for that. Math
// with 10-bit mantissas (TF32 tensor cores) would not pass, on purpose.
constexpr double kTolerance = 1e-3;

const ConvImpl kImpls[] = {ConvImpl::Handwritten, ConvImpl::Cudnn, ConvImpl::Cublas};

// Puts back, when it goes, the implementation in use when it was made.
class ConvImplRestorer {
 public:
  ConvImplRestorer() : saved_(kernels::cuda::conv_impl()) {}
  ~ConvImplRestorer() { kernels::cuda::set_conv_impl(saved_); }
  ConvImplRestorer(const ConvImplRestorer&) = delete;
  ConvImplRestorer& operator=(const ConvImplRestorer&) = delete;

 private:
  ConvImpl saved_;
};

struct ConvCase {
  bool transposed;
  int64_t batch, in_channels, out_channels, height, width, kernel, stride, padding;
  bool bias;
};

std::string describe(const ConvCase& c) {
  std::ostringstream out;
  out << (c.transposed ? "conv_transpose2d " : "conv2d ") << c.batch << "x" << c.in_channels << "x" << c.height << "x"
      << c.width << " -> " << c.out_channels << " channels, kernel " << c.kernel << ", stride " << c.stride
      << ", padding " << c.padding << (c.bias ? ", bias" : ", no bias");
  return out.str();
}

// Spatial extent of the output for an input extent `in`.
int64_t output_extent(bool transposed, int64_t in, int64_t kernel, int64_t stride, int64_t padding) {
  return transposed ? (in - 1) * stride - 2 * padding + kernel : (in + 2 * padding - kernel) / stride + 1;
}

// Checks every implementation against the CPU on one case; the CPU result is
// computed once.
void check_case(const ConvCase& c, uint64_t seed) {
  INFO(describe(c));
  const Shape weight_shape = c.transposed ? Shape{c.in_channels, c.out_channels, c.kernel, c.kernel}
                                          : Shape{c.out_channels, c.in_channels, c.kernel, c.kernel};
  std::vector<Tensor> inputs{random_tensor({c.batch, c.in_channels, c.height, c.width}, seed),
                             random_tensor(weight_shape, seed + 1)};
  if (c.bias) inputs.push_back(random_tensor({c.out_channels}, seed + 2));
  const ConvParams params{c.stride, c.padding};
  const Function f = [&](const std::vector<Tensor>& in) {
    const Tensor bias = in.size() > 2 ? in[2] : Tensor();
    return c.transposed ? conv_transpose2d(in[0], in[1], bias, params) : conv2d(in[0], in[1], bias, params);
  };
  const Evaluation cpu = evaluate(f, inputs, Device::cpu());
  const ConvImplRestorer restorer;
  for (const ConvImpl impl : kImpls) {
    INFO(kernels::cuda::to_string(impl));
    kernels::cuda::set_conv_impl(impl);
    REQUIRE(kernels::cuda::conv_impl() == impl);
    check_matches(evaluate(f, inputs, kGpu), cpu, kTolerance);
  }
}

// ---- the presets' layers ----

// A convolution child of a model with the spatial extent of its input when
// the model runs on 256x256 images.
struct ModelLayer {
  std::string model, name;
  std::shared_ptr<nn::ConvBase> conv;
  bool transposed;
  int64_t input_extent;
};

constexpr int64_t kImageSize = 256;

// The model's Conv2d and ConvTranspose2d children, in registration order.
std::vector<ModelLayer> conv_children(const std::string& model_name, const nn::Module& model) {
  std::vector<ModelLayer> layers;
  for (const auto& [name, child] : model.named_children()) {
    if (auto conv = std::dynamic_pointer_cast<nn::Conv2d>(child)) layers.push_back({model_name, name, conv, false, 0});
    if (auto deconv = std::dynamic_pointer_cast<nn::ConvTranspose2d>(child))
      layers.push_back({model_name, name, deconv, true, 0});
  }
  return layers;
}

int64_t output_extent(const ModelLayer& layer) {
  const nn::ConvOptions& o = layer.conv->options;
  return output_extent(layer.transposed, layer.input_extent, o.kernel_size(), o.stride(), o.padding());
}

int64_t suffix_number(const std::string& name, const std::string& prefix) {
  REQUIRE(name.compare(0, prefix.size(), prefix) == 0);
  return std::stoll(name.substr(prefix.size()));
}

// U-Net input extents follow from the layer names (see models/unet.h):
//   paper   — "down<i>" sees 256 / 2^i; "up<i>", which rebuilds the input of
//             down<i>, sees 256 / 2^(i+1).
//   chainer — "stem" and "head" see 256; "down<i>" (i = 1..n) sees
//             256 / 2^(i-1); "up<j>" (j = 0..n-1) sees 256 / 2^(n-j).
// Each decoder layer must give back exactly the extent of the encoder level
// its output is concatenated with, which is checked here.
std::vector<ModelLayer> unet_layers(const models::UnetGenerator& unet) {
  const bool paper = unet.options().preset == models::Preset::Paper;
  std::vector<ModelLayer> layers = conv_children(paper ? "paper U-Net" : "chainer U-Net", unet);
  const int64_t n = unet.options().num_downs;
  REQUIRE(layers.size() == static_cast<size_t>(paper ? 2 * n : 2 * n + 2));
  for (ModelLayer& layer : layers) {
    int64_t expected_output = 0;
    if (layer.name == "stem" || layer.name == "head") {
      layer.input_extent = kImageSize;
      expected_output = kImageSize;
    } else if (layer.name.compare(0, 4, "down") == 0) {
      const int64_t i = suffix_number(layer.name, "down");
      layer.input_extent = kImageSize >> (paper ? i : i - 1);
      expected_output = layer.input_extent / 2;
    } else {
      const int64_t i = suffix_number(layer.name, "up");
      layer.input_extent = kImageSize >> (paper ? i + 1 : n - i);
      expected_output = layer.input_extent * 2;
    }
    INFO(layer.model << " layer " << layer.name);
    REQUIRE(output_extent(layer) == expected_output);
  }
  return layers;
}

// PatchGAN layers run in registration order, each on the previous output;
// the chainer preset's two streams both see the image, and the stack starts
// at their (equal) output extent. Checked against a real forward pass.
std::vector<ModelLayer> patchgan_layers(models::PatchGanDiscriminator& discriminator) {
  const bool paper = discriminator.options().preset == models::Preset::Paper;
  std::vector<ModelLayer> layers = conv_children(paper ? "paper PatchGAN" : "chainer PatchGAN", discriminator);
  int64_t extent = kImageSize;
  for (ModelLayer& layer : layers) {
    const bool stream = layer.name.size() > 7 && layer.name.compare(layer.name.size() - 7, 7, "_stream") == 0;
    layer.input_extent = stream ? kImageSize : extent;
    extent = output_extent(layer);
  }
  NoGradGuard no_grad;
  const models::PatchGanOptions& o = discriminator.options();
  discriminator.eval();
  const Tensor logits = discriminator.forward(Tensor::zeros({1, o.condition_channels, kImageSize, kImageSize}),
                                              Tensor::zeros({1, o.image_channels, kImageSize, kImageSize}));
  REQUIRE(logits.shape() == Shape{1, 1, extent, extent});
  return layers;
}

ConvCase case_of(const ModelLayer& layer, int64_t batch) {
  const nn::ConvOptions& o = layer.conv->options;
  return {layer.transposed, batch,           o.in_channels(), o.out_channels(), layer.input_extent,
          layer.input_extent, o.kernel_size(), o.stride(),      o.padding(),      o.bias()};
}

}  // namespace

TEST_CASE("conv2d and conv_transpose2d on CUDA match the CPU on small odd shapes, every implementation",
          "[cuda][conv]") {
  // batch, in, out, height, width, kernel, stride, padding, bias
  const ConvCase shapes[] = {
      {false, 1, 1, 1, 5, 5, 3, 1, 0, false}, {false, 2, 3, 4, 7, 6, 3, 1, 1, true},
      {false, 3, 2, 5, 9, 7, 4, 2, 1, true},  {false, 1, 4, 3, 6, 8, 1, 1, 0, true},
      {false, 2, 3, 2, 5, 5, 3, 2, 2, false}, {false, 1, 2, 3, 4, 4, 4, 2, 1, true},
      {false, 2, 5, 3, 11, 9, 4, 1, 1, true}, {false, 3, 7, 1, 8, 8, 4, 2, 1, true},
  };
  uint64_t seed = 5000;
  for (const bool transposed : {false, true}) {
    for (ConvCase c : shapes) {
      c.transposed = transposed;
      check_case(c, seed += 10);
    }
  }
}

TEST_CASE("every convolution of the U-Net and PatchGAN presets on CUDA matches the CPU, every implementation",
          "[cuda][conv][models]") {
  // The models are built only to read their layers: what each convolution
  // sees at 256x256 is derived from the preset structure above.
  std::vector<ModelLayer> layers;
  {
    models::UnetGenerator paper(models::UnetOptions::for_preset(models::Preset::Paper, 3, 3));
    models::UnetGenerator chainer(models::UnetOptions::for_preset(models::Preset::Chainer, 12, 3));
    models::PatchGanDiscriminator paper_d(models::PatchGanOptions::for_preset(models::Preset::Paper, 3, 3));
    models::PatchGanDiscriminator chainer_d(models::PatchGanOptions::for_preset(models::Preset::Chainer, 12, 3));
    for (std::vector<ModelLayer> part :
         {unet_layers(paper), unet_layers(chainer), patchgan_layers(paper_d), patchgan_layers(chainer_d)})
      layers.insert(layers.end(), part.begin(), part.end());
  }
  REQUIRE(layers.size() == 16 + 16 + 5 + 6);

  // Layers of the same geometry (the presets share many) are checked once.
  std::set<std::string> seen;
  uint64_t seed = 6000;
  for (const int64_t batch : {1, 4}) {
    for (const ModelLayer& layer : layers) {
      const ConvCase c = case_of(layer, batch);
      if (!seen.insert(describe(c)).second) continue;
      INFO(layer.model << " layer " << layer.name << " at " << kImageSize << "x" << kImageSize);
      check_case(c, seed += 10);
    }
  }
}
