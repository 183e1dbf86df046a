// The convolution layers of the two pix2pix presets at a batch size and
// image size, each with how many times one training iteration runs each of
// its passes. Shared by bench_kernels (which times every pass at these
// shapes) and bench_pix2pix (which divides the FLOPs by the step time);
// docs/perf.md explains the counts.
//
// Nothing here describes the networks: the layers are read off the preset's
// real models. One training step of a narrow copy of the preset's Pix2Pix
// (the same networks and update order with base widths of 2, which keeps
// the step cheap at full image size) is observed (step_observer.h) for the
// layers' order, input extents, norms and pass counts; the full-width
// networks' modules give each layer's channels, kernel, stride, padding and
// bias.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <pixgrad/core/generator.h>
#include <pixgrad/core/tensor.h>
#include <pixgrad/layers/conv.h>
#include <pixgrad/models/networks.h>
#include <pixgrad/models/pix2pix.h>

#include "conv_layer.h"
#include "step_observer.h"

namespace pixgrad::bench {

// The reference inputs: paper 3-channel images, chainer 12-channel one-hot
// CMP label maps (input_channels 0 picks these).
inline int64_t preset_input_channels(const std::string& preset) { return preset == "chainer" ? 12 : 3; }

namespace detail {

// The table at batch 1.
inline std::vector<ConvLayer> walk_preset(const std::string& preset, int64_t size, int64_t input_channels) {
  const models::Pix2PixOptions options =
      models::Pix2PixOptions::for_preset(models::parse_preset(preset), input_channels, 3);
  // Building and stepping models draws random numbers: the caller's stream
  // is put back afterwards, so that asking for a table changes no result.
  Generator& random = default_generator();
  const uint64_t seed = random.seed(), offset = random.offset();

  models::Pix2PixOptions narrow = options;
  narrow.generator.ngf = 2;
  narrow.discriminator.ndf = 2;
  models::Pix2Pix model(narrow);
  const std::vector<ObservedConv> observed =
      observe_step(model, Tensor::normal({1, input_channels, size, size}, 0, 1),
                   Tensor::normal({1, options.generator.output_channels, size, size}, 0, 1));

  std::map<std::string, std::shared_ptr<nn::Module>> modules;
  const std::shared_ptr<nn::Module> generator = models::make_generator(options.preset, options.generator);
  const std::shared_ptr<nn::Module> discriminator =
      models::make_discriminator(options.preset, options.discriminator);
  for (const auto& [name, module] : generator->named_modules()) modules["G." + name] = module;
  for (const auto& [name, module] : discriminator->named_modules()) modules["D." + name] = module;
  random.set_state(seed, offset);

  std::vector<ConvLayer> layers;
  for (const ObservedConv& seen : observed) {
    const nn::ConvOptions& o = std::dynamic_pointer_cast<nn::ConvBase>(modules.at(seen.name))->options;
    ConvLayer l;
    l.preset = preset;
    l.name = seen.name;
    l.transposed = seen.transposed;
    l.in_channels = o.in_channels();
    l.height = seen.height;
    l.width = seen.width;
    l.out_channels = o.out_channels();
    l.kernel = o.kernel_size();
    l.stride = o.stride();
    l.padding = o.padding();
    l.bias = o.bias();
    l.norm = seen.norm;
    l.per_iteration = seen.passes;
    layers.push_back(l);
  }
  return layers;
}

}  // namespace detail

inline std::vector<ConvLayer> preset_layers(const std::string& preset, int64_t batch, int64_t size = 256,
                                            int64_t input_channels = 0) {
  if (input_channels <= 0) input_channels = preset_input_channels(preset);
  // Building the full-width networks takes seconds on a CPU: walk each
  // configuration once per process.
  static std::map<std::tuple<std::string, int64_t, int64_t>, std::vector<ConvLayer>> walked;
  const auto key = std::make_tuple(preset, size, input_channels);
  auto found = walked.find(key);
  if (found == walked.end()) found = walked.emplace(key, detail::walk_preset(preset, size, input_channels)).first;
  std::vector<ConvLayer> layers = found->second;
  for (ConvLayer& l : layers) l.batch = batch;
  return layers;
}

struct IterationCost {
  double conv_flops = 0;  // every conv pass of one iteration
  // The same split by network (0: G, 1: D) and pass (forward, backward-data, backward-weight).
  double conv_flops_by[2][3] = {};
  double conv_bytes = 0;  // their compulsory bytes
  double bn_bytes = 0;    // batch norm: forward reads x, writes y; backward reads x, dy, writes dx
  double adam_bytes = 0;  // reads p, g, m, v and writes p, m, v for every parameter of G and D
  int64_t g_parameters = 0, d_parameters = 0;
};

inline IterationCost iteration_cost(const std::vector<ConvLayer>& layers) {
  IterationCost cost;
  for (const ConvLayer& l : layers) {
    const PassCounts& c = l.per_iteration;
    const int passes = c.forward + c.backward_data + c.backward_weight;
    cost.conv_flops += passes * l.flops();
    const int network = l.name[0] == 'G' ? 0 : 1;
    cost.conv_flops_by[network][0] += c.forward * l.flops();
    cost.conv_flops_by[network][1] += c.backward_data * l.flops();
    cost.conv_flops_by[network][2] += c.backward_weight * l.flops();
    cost.conv_bytes += passes * l.bytes();
    const double activation = 4.0 * static_cast<double>(l.output_elements());
    cost.bn_bytes += l.bn_forward() * 2 * activation + l.bn_backward() * 3 * activation;
    (network == 0 ? cost.g_parameters : cost.d_parameters) += l.parameters();
  }
  cost.adam_bytes = 28.0 * static_cast<double>(cost.g_parameters + cost.d_parameters);
  return cost;
}

}  // namespace pixgrad::bench
