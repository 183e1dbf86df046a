// Define-by-run autograd. Each differentiable op computes its output eagerly
// and, when any input requires a gradient, records a Node: the op's inputs and
// a closure that maps the output's gradient to the inputs' gradients.
// backward() walks the nodes in reverse topological order, sums gradients
// where a tensor feeds several ops, accumulates into leaves' .grad, and frees
// each node's saved tensors as soon as it has run.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <pixgrad/core/tensor.h>

namespace pixgrad {

// Returns one gradient per input, in order; an undefined Tensor where the
// input needs none.
using BackwardFunction = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string op;
  std::vector<Tensor> inputs;
  BackwardFunction backward;
  Shape output_shape;
  bool released = false;  // set once backward has run and freed the saved tensors
};

// Whether ops record nodes on this thread (true unless a NoGradGuard is alive).
bool grad_mode_enabled();

// Disables recording for its lifetime, like torch::NoGradGuard.
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when recording is on and some input requires a gradient.
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Attaches a node for `op` to `output` when any input requires a gradient;
// returns `output` either way. `backward` must return inputs.size() gradients.
Tensor record(const char* op, Tensor output, std::vector<Tensor> inputs, BackwardFunction backward);

// The engine behind Tensor::backward. With retain_graph the nodes keep their
// saved tensors, so a second backward can run through the same graph (the
// original Chainer trainer backpropagates through D twice from one forward).
void run_backward(const Tensor& root, const Tensor& gradient, bool retain_graph = false);

}  // namespace pixgrad
