// conv2d and conv_transpose2d on CUDA, for every kernel implementation,
// against the CPU ops: the output and the input, weight and bias gradients.
// First small odd shapes; then every convolution of the U-Net and PatchGAN
// presets at 256x256, batch 1 and 4, read off the real models.
#include <catch2/catch.hpp>
#include <cuda_runtime.h>

#include <initializer_list>
#include <cstdlib>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_testing.h"
#include "tests/precision_scope.h"
#include <pixgrad/core/autograd.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/kernels/cuda/conv2d.h>
#include <pixgrad/layers/conv.h>
#include <pixgrad/models/networks.h>

using namespace pixgrad;
using namespace pixgrad::cuda_testing;
using kernels::cuda::ConvImpl;

namespace {

// Every comparison uses kConvTolerance (tests/compare.h): per element, tight
// enough that convolutions on TF32-rounded operands fail.

// Every implementation, or those PIXGRAD_TEST_CONV_IMPLS names (comma-separated,
// e.g. "handwritten" for a compute-sanitizer run, where cuDNN's timed
// algorithm search would take most of the time).
std::vector<ConvImpl> impls_under_test() {
  const char* names = std::getenv("PIXGRAD_TEST_CONV_IMPLS");
  if (names == nullptr || *names == '\0') return {ConvImpl::Handwritten, ConvImpl::Cudnn, ConvImpl::Cublas};
  std::vector<ConvImpl> impls;
  std::stringstream list(names);
  for (std::string name; std::getline(list, name, ',');) impls.push_back(kernels::cuda::parse_conv_impl(name));
  return impls;
}

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

// Random input, weight and (if the case has one) bias for a case.
std::vector<Tensor> case_inputs(const ConvCase& c, uint64_t seed) {
  const Shape weight_shape = c.transposed ? Shape{c.in_channels, c.out_channels, c.kernel, c.kernel}
                                          : Shape{c.out_channels, c.in_channels, c.kernel, c.kernel};
  std::vector<Tensor> inputs{random_tensor({c.batch, c.in_channels, c.height, c.width}, seed),
                             random_tensor(weight_shape, seed + 1)};
  if (c.bias) inputs.push_back(random_tensor({c.out_channels}, seed + 2));
  return inputs;
}

// The case's op on (input, weight[, bias]).
Function case_function(const ConvCase& c) {
  const ConvParams params{c.stride, c.padding};
  return [c, params](const std::vector<Tensor>& in) {
    const Tensor bias = in.size() > 2 ? in[2] : Tensor();
    return c.transposed ? conv_transpose2d(in[0], in[1], bias, params) : conv2d(in[0], in[1], bias, params);
  };
}

// Checks every implementation against the CPU on one case, with the CUDA
// inputs in each of `layouts`; the CPU result is computed once.
void check_case(const ConvCase& c, uint64_t seed, std::initializer_list<Layout> layouts = {Layout::Aligned}) {
  INFO(describe(c));
  const std::vector<Tensor> inputs = case_inputs(c, seed);
  const Function f = case_function(c);
  const Evaluation cpu = evaluate(f, inputs, Device::cpu());
  const ConvImplRestorer restorer;
  for (const ConvImpl impl : impls_under_test()) {
    INFO(kernels::cuda::to_string(impl));
    kernels::cuda::set_conv_impl(impl);
    REQUIRE(kernels::cuda::conv_impl() == impl);
    for (const Layout layout : layouts) {
      INFO("CUDA inputs " << to_string(layout));
      check_matches(evaluate(f, inputs, kGpu, layout), cpu, kConvTolerance);
    }
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
std::vector<ModelLayer> unet_layers(models::Preset preset, const models::UnetOptions& options) {
  const bool paper = preset == models::Preset::Paper;
  const std::shared_ptr<nn::Module> unet = models::make_generator(preset, options);
  std::vector<ModelLayer> layers = conv_children(paper ? "paper U-Net" : "chainer U-Net", *unet);
  const int64_t n = options.num_downs;
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
std::vector<ModelLayer> patchgan_layers(models::Preset preset, const models::PatchGanOptions& options) {
  const bool paper = preset == models::Preset::Paper;
  const std::shared_ptr<models::Discriminator> discriminator = models::make_discriminator(preset, options);
  std::vector<ModelLayer> layers = conv_children(paper ? "paper PatchGAN" : "chainer PatchGAN", *discriminator);
  int64_t extent = kImageSize;
  for (ModelLayer& layer : layers) {
    const bool stream = layer.name.size() > 7 && layer.name.compare(layer.name.size() - 7, 7, "_stream") == 0;
    layer.input_extent = stream ? kImageSize : extent;
    extent = output_extent(layer);
  }
  NoGradGuard no_grad;
  const models::PatchGanOptions& o = options;
  discriminator->eval();
  const Tensor logits = discriminator->forward(Tensor::zeros({1, o.condition_channels, kImageSize, kImageSize}),
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

TEST_CASE("conv2d and conv_transpose2d on CUDA match the CPU on small odd shapes, every implementation, "
          "aligned and unaligned",
          "[cuda][conv][small]") {
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
      check_case(c, seed += 10, {Layout::Aligned, Layout::Unaligned});
    }
  }
}

TEST_CASE("every convolution of the U-Net and PatchGAN presets on CUDA matches the CPU, every implementation",
          "[cuda][conv][models]") {
  // The models are built only to read their layers: what each convolution
  // sees at 256x256 is derived from the preset structure above.
  std::vector<ModelLayer> layers;
  {
    using models::Preset;
    for (std::vector<ModelLayer> part :
         {unet_layers(Preset::Paper, models::UnetOptions::for_preset(Preset::Paper, 3, 3)),
          unet_layers(Preset::Chainer, models::UnetOptions::for_preset(Preset::Chainer, 12, 3)),
          patchgan_layers(Preset::Paper, models::PatchGanOptions::for_preset(Preset::Paper, 3, 3)),
          patchgan_layers(Preset::Chainer, models::PatchGanOptions::for_preset(Preset::Chainer, 12, 3))})
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

namespace {

using pixgrad::testing::PrecisionScope;

// Sets the TF32 switch for the scope.
class Tf32Scope : public PrecisionScope {
 public:
  explicit Tf32Scope(bool allow)
      : PrecisionScope(allow ? kernels::cuda::ConvPrecision::Tf32 : kernels::cuda::ConvPrecision::Fp32) {}
};

// Operands rounded to 10-bit mantissas miss float32 by up to ~2e-3 in units of
// (|e| + rms) on the presets' layers (tests/test_compare.cpp measures the
// same rounding on the CPU).
constexpr Tolerance kTf32Tolerance{5e-3, 5e-3, 0};

}  // namespace

TEST_CASE("cuDNN runs FMA-math algorithms unless TF32 is allowed, and TF32 stays within TF32 rounding",
          "[cuda][conv][tf32]") {
  // A mid-size U-Net layer, and the innermost one.
  const ConvCase cases[] = {{false, 2, 128, 256, 32, 32, 4, 2, 1, false}, {true, 1, 512, 512, 1, 1, 4, 2, 1, true}};
  const ConvImplRestorer restorer;
  uint64_t seed = 9000;
  for (const ConvCase& c : cases) {
    INFO(describe(c));
    const std::vector<Tensor> inputs = case_inputs(c, seed += 10);
    const Function f = case_function(c);
    const Evaluation cpu = evaluate(f, inputs, Device::cpu());
    // The geometry cuDNN sees: a transposed layer runs its mirror convolution.
    const kernels::Conv2dGeometry g =
        c.transposed ? kernels::Conv2dGeometry{c.batch, c.out_channels, (c.height - 1) * c.stride - 2 * c.padding + c.kernel,
                                           (c.width - 1) * c.stride - 2 * c.padding + c.kernel, c.in_channels,
                                           c.kernel, c.kernel, c.stride, c.padding}
                     : kernels::Conv2dGeometry{c.batch, c.in_channels, c.height, c.width, c.out_channels,
                                           c.kernel, c.kernel, c.stride, c.padding};
    using kernels::cuda::ConvPass;
    for (const bool tf32 : {false, true}) {
      INFO("TF32 " << (tf32 ? "allowed" : "off"));
      const Tf32Scope scope(tf32);
      for (const ConvImpl impl : {ConvImpl::Cudnn, ConvImpl::Cublas}) {
        INFO(kernels::cuda::to_string(impl));
        kernels::cuda::set_conv_impl(impl);
        check_matches(evaluate(f, inputs, kGpu), cpu, tf32 ? kTf32Tolerance : kConvTolerance);
        for (const ConvPass pass : {ConvPass::Forward, ConvPass::BackwardData, ConvPass::BackwardWeight}) {
          const kernels::cuda::ConvChoice choice = kernels::cuda::conv_choice(impl, pass, g);
          INFO(kernels::cuda::to_string(pass) << ": " << choice.algorithm << " (" << choice.math << ")");
          CHECK_FALSE(choice.algorithm.empty());
          if (impl == ConvImpl::Cudnn && !tf32) CHECK(choice.math == "fma");
          if (impl == ConvImpl::Cublas) CHECK(choice.math == (tf32 ? "tf32" : "fp32"));
          // Recorded for the log: which math cuDNN picked when it was free to.
          if (impl == ConvImpl::Cudnn && tf32) WARN("cuDNN with TF32 allowed, " << kernels::cuda::to_string(pass)
                                                    << ": " << choice.algorithm << " (" << choice.math << ")");
        }
      }
    }
  }
}

namespace {

// bf16 keeps 8 significant bits to TF32's 11: eight times TF32's rounding.
constexpr Tolerance kBf16Tolerance{4e-2, 4e-2, 0};

// Whether any output or gradient of `a` misses `b` by more than `tolerance`.
bool differs_somewhere(const Evaluation& a, const Evaluation& b, const Tolerance& tolerance) {
  bool differs = compare(a.output, b.output, tolerance).failures > 0;
  for (size_t i = 0; i < b.grads.size(); ++i) differs = differs || compare(a.grads[i], b.grads[i], tolerance).failures > 0;
  return differs;
}

}  // namespace

TEST_CASE("The handwritten kernels on tensor cores: 3xTF32 within FP32's tolerance, TF32 and bf16 within their "
          "rounding and outside the finer one's", "[cuda][conv][tf32]") {
  using kernels::cuda::ConvPrecision;
  // The 128x128 tile (a mid-size U-Net layer), the narrow tile (the
  // innermost), odd channel counts on the 64- and 32-row tiles, and a
  // 3-channel output, whose 8-row tile stays FP32 in the forward pass.
  const ConvCase cases[] = {{false, 2, 128, 256, 32, 32, 4, 2, 1, false},
                            {true, 1, 512, 512, 1, 1, 4, 2, 1, true},
                            {false, 1, 37, 65, 17, 13, 4, 2, 1, false},
                            {true, 2, 33, 19, 9, 11, 4, 2, 1, true},
                            {true, 1, 64, 3, 16, 16, 4, 2, 1, true}};
  const ConvImplRestorer restorer;
  kernels::cuda::set_conv_impl(ConvImpl::Handwritten);
  int major = 0;
  REQUIRE(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) == cudaSuccess);
  if (major < 8) {  // no tensor cores: the precision is refused instead
    WARN("compute capability " << major << ".x: only the refusal of TF32 is checked");
    const PrecisionScope scope(ConvPrecision::Tf32);
    const ConvCase& c = cases[0];
    CHECK_THROWS_WITH(evaluate(case_function(c), case_inputs(c, 9500), kGpu),
                      Catch::Matchers::Contains("needs tensor cores of compute capability 8.0"));
    return;
  }
  uint64_t seed = 9500;
  for (const ConvCase& c : cases) {
    INFO(describe(c));
    const std::vector<Tensor> inputs = case_inputs(c, seed += 10);
    const Function f = case_function(c);
    const Evaluation cpu = evaluate(f, inputs, Device::cpu());
    {
      INFO("3xtf32");
      const PrecisionScope scope(ConvPrecision::Tf32x3);
      check_matches(evaluate(f, inputs, kGpu), cpu, kConvTolerance);
    }
    {
      INFO("bf16");
      const PrecisionScope scope(ConvPrecision::Bf16);
      const Evaluation bf16 = evaluate(f, inputs, kGpu);
      check_matches(bf16, cpu, kBf16Tolerance);
      CHECK(differs_somewhere(bf16, cpu, kTf32Tolerance));  // rounded to bf16, not TF32
    }
    INFO("tf32");
    const PrecisionScope scope(ConvPrecision::Tf32);
    const Evaluation tf32 = evaluate(f, inputs, kGpu);
    check_matches(tf32, cpu, kTf32Tolerance);
    // Rounded operands show somewhere: the tensor cores really ran.
    CHECK(differs_somewhere(tf32, cpu, kConvTolerance));
    // No atomics: the same bits on a second run.
    const Evaluation again = evaluate(f, inputs, kGpu);
    CHECK(compare(again.output, tf32.output, Tolerance{}).failures == 0);
    for (size_t i = 0; i < cpu.grads.size(); ++i)
      CHECK(compare(again.grads[i], tf32.grads[i], Tolerance{}).failures == 0);
  }
}
