// One convolution layer as the benchmarks see it: its shapes at a batch size
// and image size, how many times a training iteration runs each of its
// passes, and what each pass costs (FLOPs, compulsory bytes). A preset's
// layers come from apps/bench/pix2pix_layers.h; bench_kernels --shape makes
// others.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

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

}  // namespace pixgrad::bench
