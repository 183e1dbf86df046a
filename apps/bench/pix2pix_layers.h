// The convolution layers of the two pix2pix presets (models/unet.cpp,
// models/patchgan.cpp) at a batch size and image size, each with how many
// times one training iteration runs each of its passes under the preset's
// update order (models/pix2pix.cpp). Shared by bench_kernels (which times
// every pass at these shapes) and bench_pix2pix (which divides the FLOPs by
// the step time); docs/perf.md derives the counts.
//
// Counting rules, from core/ops/conv.cpp and core/autograd.cpp: a conv's
// backward computes the input gradient when its input required a gradient
// at forward time, and the weight gradient when its weight (or bias) does.
//   paper   G forward; D forward on (x, G(x) detached) and on (x, y); D-loss
//           backward through both (no input gradient into the first layer:
//           its input is built from tensors that need none); G's forward
//           through the updated, frozen D and backward through D (input
//           gradients only) into G.
//   chainer G forward; D forward on (x, G(x)) and (x, y); G-loss backward
//           through D(x, G(x)) into G, which also forms D's weight gradients
//           (D is not frozen; they are cleared afterwards); D-loss backward
//           through both D graphs. The image stream's input gradient in the
//           D-loss pass over (x, G(x)) is still computed, although the graph
//           was cut at G(x) (the input's need was fixed at forward time),
//           and thrown away.
// Every conv is followed by a batch norm when `norm`; the norm runs forward
// with the conv's forward and backward whenever a gradient flows back
// through it (bn_backward()).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <pixgrad/core/error.h>
#include <pixgrad/kernels/shapes.h>

namespace pixgrad::bench {

struct PassCounts {
  int forward = 0, backward_data = 0, backward_weight = 0;
};

struct ConvLayer {
  std::string preset;   // "paper" | "chainer" | "custom"
  std::string name;     // "G.down3", "D.layer1", ...
  bool transposed = false;
  int64_t batch = 1, in_channels = 0, height = 0, width = 0, out_channels = 0;  // input [N, C, H, W]
  int64_t kernel = 4, stride = 2, padding = 1;
  bool bias = false, norm = false;
  PassCounts per_iteration;  // all zero for a shape that is not a preset's layer

  int64_t out_extent(int64_t in) const {
    return transposed ? (in - 1) * stride - 2 * padding + kernel : (in + 2 * padding - kernel) / stride + 1;
  }
  int64_t out_height() const { return out_extent(height); }
  int64_t out_width() const { return out_extent(width); }
  // The convolution whose three passes compute this layer's: itself, or for
  // a transposed layer its mirror (output and input swapped, same weight
  // tensor [in, out, k, k]); see core/ops/conv.cpp.
  kernels::Conv2dGeometry geometry() const {
    if (transposed)
      return {batch, out_channels, out_height(), out_width(), in_channels, kernel, kernel, stride, padding};
    return {batch, in_channels, height, width, out_channels, kernel, kernel, stride, padding};
  }
  int64_t input_elements() const { return batch * in_channels * height * width; }
  int64_t output_elements() const { return batch * out_channels * out_height() * out_width(); }
  int64_t weight_elements() const { return in_channels * out_channels * kernel * kernel; }
  // 2 * N * Cout * OH * OW * Cin * k * k (for a transposed layer, counted on
  // its input: 2 * N * Cin * H * W * Cout * k * k); the same for all passes.
  double flops() const {
    const double pixels = transposed ? static_cast<double>(input_elements()) / in_channels
                                     : static_cast<double>(output_elements()) / out_channels;
    return 2.0 * pixels * static_cast<double>(in_channels * out_channels * kernel * kernel);
  }
  // The fewest bytes a pass must move: each operand read once, the result
  // written once (input + weight + output, float32, bias included).
  double bytes() const {
    return 4.0 * static_cast<double>(input_elements() + weight_elements() + output_elements() +
                                     (bias ? out_channels : 0));
  }
  int64_t parameters() const { return weight_elements() + (bias ? out_channels : 0) + (norm ? 2 * out_channels : 0); }
  int bn_forward() const { return norm ? per_iteration.forward : 0; }
  int bn_backward() const {
    return norm ? std::max(per_iteration.backward_data, per_iteration.backward_weight) : 0;
  }
  // "G.down3 256->512 4x4/2 @32", "G.up3 1024->256 4x4/2T @16" (@HxW when not square).
  std::string label() const {
    return name + " " + std::to_string(in_channels) + "->" + std::to_string(out_channels) + " " +
           std::to_string(kernel) + "x" + std::to_string(kernel) + "/" + std::to_string(stride) +
           (transposed ? "T" : "") + " @" + std::to_string(height) +
           (height == width ? "" : "x" + std::to_string(width));
  }
  // "16x256x32x32 -> 512 k4 s2 p1" (" (T)" for transposed).
  std::string shape() const {
    return std::to_string(batch) + "x" + std::to_string(in_channels) + "x" + std::to_string(height) + "x" +
           std::to_string(width) + " -> " + std::to_string(out_channels) + " k" + std::to_string(kernel) + " s" +
           std::to_string(stride) + " p" + std::to_string(padding) + (transposed ? " (T)" : "");
  }
};

namespace detail {

// models/unet.cpp's level_channels with ngf = 64: 64, 128, 256, 512, 512, ...
inline int64_t level_channels(int level) { return 64 * std::min<int64_t>(int64_t{1} << std::min(level, 3), 8); }

inline ConvLayer layer(const std::string& preset, const std::string& name, bool transposed, int64_t batch,
                       int64_t in, int64_t size, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                       bool bias, bool norm, PassCounts counts) {
  ConvLayer l;
  l.preset = preset;
  l.name = name;
  l.transposed = transposed;
  l.batch = batch;
  l.in_channels = in;
  l.height = size;
  l.width = size;
  l.out_channels = out;
  l.kernel = kernel;
  l.stride = stride;
  l.padding = padding;
  l.bias = bias;
  l.norm = norm;
  l.per_iteration = counts;
  return l;
}

// unet_256 (num_downs 8) and the 70x70 PatchGAN (n_layers 3), batch norm:
// convs carry a bias only at G's output and D's first and last layers.
inline std::vector<ConvLayer> paper_layers(int64_t batch, int64_t size, int64_t input_channels) {
  const std::string p = "paper";
  constexpr int n = 8;
  std::vector<ConvLayer> layers;
  for (int i = 0; i < n; ++i)
    layers.push_back(layer(p, "G.down" + std::to_string(i), false, batch,
                           i == 0 ? input_channels : level_channels(i - 1), size >> i, level_channels(i), 4, 2, 1,
                           false, i > 0 && i < n - 1, {1, i == 0 ? 0 : 1, 1}));
  for (int i = n - 1; i >= 0; --i)
    layers.push_back(layer(p, "G.up" + std::to_string(i), true, batch,
                           i == n - 1 ? level_channels(i) : 2 * level_channels(i), size >> (i + 1),
                           i == 0 ? 3 : level_channels(i - 1), 4, 2, 1, i == 0, i > 0, {1, 1, 1}));
  // D runs forward 3 times; its weights get gradients from the D loss
  // (2 graphs); inputs get gradients in those 2 graphs (not the first
  // layer's) and in the G pass.
  const int64_t d_in = input_channels + 3;
  layers.push_back(layer(p, "D.layer0", false, batch, d_in, size, 64, 4, 2, 1, true, false, {3, 1, 2}));
  layers.push_back(layer(p, "D.layer1", false, batch, 64, size / 2, 128, 4, 2, 1, false, true, {3, 3, 2}));
  layers.push_back(layer(p, "D.layer2", false, batch, 128, size / 4, 256, 4, 2, 1, false, true, {3, 3, 2}));
  layers.push_back(layer(p, "D.layer3", false, batch, 256, size / 8, 512, 4, 1, 1, false, true, {3, 3, 2}));
  layers.push_back(layer(p, "D.layer4", false, batch, 512, size / 8 - 1, 1, 4, 1, 1, true, false, {3, 3, 2}));
  return layers;
}

// The Chainer net.py encoder-decoder (3x3 stem and head at full size, 7
// stride-2 levels) and its two-stream discriminator; every conv has a bias.
inline std::vector<ConvLayer> chainer_layers(int64_t batch, int64_t size, int64_t input_channels) {
  const std::string p = "chainer";
  constexpr int n = 7;
  std::vector<ConvLayer> layers;
  layers.push_back(layer(p, "G.stem", false, batch, input_channels, size, 64, 3, 1, 1, true, false, {1, 0, 1}));
  for (int i = 1; i <= n; ++i)
    layers.push_back(layer(p, "G.down" + std::to_string(i), false, batch, level_channels(i - 1), size >> (i - 1),
                           level_channels(i), 4, 2, 1, true, true, {1, 1, 1}));
  for (int j = 0; j < n; ++j)
    layers.push_back(layer(p, "G.up" + std::to_string(j), true, batch,
                           j == 0 ? level_channels(n) : 2 * level_channels(n - j), size >> (n - j),
                           level_channels(n - 1 - j), 4, 2, 1, true, true, {1, 1, 1}));
  layers.push_back(layer(p, "G.head", false, batch, 128, size, 3, 3, 1, 1, true, false, {1, 1, 1}));
  // D runs forward twice; its weights get gradients 3 times (G loss through
  // the fake graph, D loss through both); see the header comment for the
  // image stream's 2 input gradients.
  layers.push_back(
      layer(p, "D.condition", false, batch, input_channels, size, 32, 4, 2, 1, true, false, {2, 0, 3}));
  layers.push_back(layer(p, "D.image", false, batch, 3, size, 32, 4, 2, 1, true, false, {2, 2, 3}));
  layers.push_back(layer(p, "D.layer0", false, batch, 64, size / 2, 128, 4, 2, 1, true, true, {2, 3, 3}));
  layers.push_back(layer(p, "D.layer1", false, batch, 128, size / 4, 256, 4, 2, 1, true, true, {2, 3, 3}));
  layers.push_back(layer(p, "D.layer2", false, batch, 256, size / 8, 512, 4, 2, 1, true, true, {2, 3, 3}));
  layers.push_back(layer(p, "D.layer3", false, batch, 512, size / 16, 1, 3, 1, 1, true, false, {2, 3, 3}));
  return layers;
}

}  // namespace detail

// The reference inputs: paper 3-channel images, chainer 12-channel one-hot
// CMP label maps (input_channels 0 picks these).
inline int64_t preset_input_channels(const std::string& preset) { return preset == "chainer" ? 12 : 3; }

inline std::vector<ConvLayer> preset_layers(const std::string& preset, int64_t batch, int64_t size = 256,
                                            int64_t input_channels = 0) {
  if (input_channels <= 0) input_channels = preset_input_channels(preset);
  if (preset == "paper") {
    PIXGRAD_CHECK(size % 256 == 0, "pix2pix layers: the paper preset (unet_256) needs a multiple of 256, got ", size);
    return detail::paper_layers(batch, size, input_channels);
  }
  if (preset == "chainer") {
    PIXGRAD_CHECK(size % 128 == 0, "pix2pix layers: the chainer preset needs a multiple of 128, got ", size);
    return detail::chainer_layers(batch, size, input_channels);
  }
  fail("pix2pix layers: unknown preset '", preset, "' (expected paper or chainer)");
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
