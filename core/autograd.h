// Define-by-run autograd. Each differentiable op computes its output eagerly
// and, when any input requires a gradient, records a Node: the op's inputs,
// the tensors its backward needs, and a function that maps the output's
// gradient to the inputs' gradients.
//
// The engine owns the bookkeeping an op would otherwise get wrong: it tells
// the backward which inputs need a gradient, keeps the saved tensors detached
// (a node holding its own output's graph would be a reference cycle), sums
// gradients where a tensor feeds several ops, and frees each node's tensors
// once it has run.
//
// Gradients of gradients: with create_graph, backward functions run with
// recording on, so the gradients they return are themselves differentiable
// (a gradient penalty's backward goes through them). An op whose backward is
// written with differentiable ops supports this; an op whose backward calls
// raw kernels is recorded as first-order only, and reaching it with
// create_graph is a one-line error naming the op.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <pixgrad/core/tensor.h>

namespace pixgrad {

// What the engine hands an op's backward besides the output's gradient.
class BackwardContext {
 public:
  BackwardContext(const std::vector<Tensor>& inputs, const std::vector<Tensor>& saved,
                  std::vector<bool> needs_input_grad, bool create_graph);

  // Whether input i needs a gradient from this backward; return an undefined
  // Tensor for the others (computing them would be wasted work).
  bool needs_input_grad(size_t i) const { return needs_input_grad_.at(i); }
  // Input i as the op received it: with create_graph, ops on it are recorded,
  // so a gradient computed from it knows how it depends on the input.
  const Tensor& input(size_t i) const { return inputs_.at(i); }
  // Saved tensor i (detached when recorded).
  const Tensor& saved(size_t i) const { return saved_.at(i); }
  // Whether the gradients this backward returns must themselves be differentiable.
  bool create_graph() const { return create_graph_; }

 private:
  const std::vector<Tensor>& inputs_;
  const std::vector<Tensor>& saved_;
  std::vector<bool> needs_input_grad_;
  bool create_graph_;
};

// Returns one gradient per input, in order; an undefined Tensor where the
// input needs none (or its gradient is zero).
using BackwardFunction = std::function<std::vector<Tensor>(const Tensor& grad_output, const BackwardContext& context)>;

// Whether an op's backward is itself differentiable (see the top of this file).
enum class DoubleBackward { Supported, Unsupported };

struct Node {
  std::string op;
  std::vector<Tensor> inputs;
  std::vector<Tensor> saved;
  BackwardFunction backward;
  DoubleBackward double_backward = DoubleBackward::Supported;
  // Which inputs required a gradient when the op ran. As in PyTorch, an
  // input frozen then gets no gradient even if unfrozen before backward;
  // one cut from the graph since (unchain_backward) gets none either.
  std::vector<bool> input_required_grad;
  bool released = false;  // set once backward has run and freed the inputs and saved tensors
};

// Whether ops record nodes on this thread (true unless a NoGradGuard is alive).
bool grad_mode_enabled();

// Sets whether ops record, for its lifetime, like torch::AutoGradMode: a
// function that differentiates inside (a gradient penalty) turns recording
// on even where its caller turned it off.
class AutoGradMode {
 public:
  explicit AutoGradMode(bool enabled);
  ~AutoGradMode();
  AutoGradMode(const AutoGradMode&) = delete;
  AutoGradMode& operator=(const AutoGradMode&) = delete;

 private:
  bool previous_;
};

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
// returns `output` either way. `output` must be a new tensor (not one of the
// inputs, nor produced by another op). `backward` must return inputs.size()
// gradients; `saved` are kept (detached) for it, see BackwardContext::saved.
// The op is first-order only unless told otherwise: with create_graph,
// reaching it is an error rather than a silently wrong second derivative.
Tensor record(const char* op, Tensor output, std::vector<Tensor> inputs, BackwardFunction backward,
              std::vector<Tensor> saved = {}, DoubleBackward double_backward = DoubleBackward::Unsupported);

// record() for an op whose backward computes its gradients only with
// recorded ops, reading inputs through context.input(i): such a backward is
// itself differentiable, so gradients of gradients flow through the op.
Tensor record_differentiable(const char* op, Tensor output, std::vector<Tensor> inputs, BackwardFunction backward,
                             std::vector<Tensor> saved = {});

// The engine behind Tensor::backward: accumulates d(root)/d(leaf) into the
// .grad of every leaf that requires a gradient. With retain_graph the nodes
// keep their tensors, so a second backward can run through the same graph
// (the original Chainer trainer backpropagates through D twice from one
// forward); create_graph implies it.
void run_backward(const Tensor& root, const Tensor& gradient, bool retain_graph = false, bool create_graph = false);

// How backward passes (on any thread, since the process began) gave leaves
// their first gradient: adopted, the pass's own tensor becoming .grad, or
// copied, because something else shared its memory. Adopting saves a copy
// of every parameter's gradient per step.
struct FirstGradientCounts {
  int64_t adopted = 0, copied = 0;
};
FirstGradientCounts first_gradient_counts();

// Told, during backward() on this thread (not grad()), of each leaf whose
// .grad has received its last contribution of the pass: every node that
// could still add to it has run or been skipped. A leaf no node of the pass
// takes as an input is not told of. What a data-parallel reduction starts
// on while the rest of the backward pass runs.
using GradientReady = std::function<void(const Tensor& leaf)>;

// What a GradientReadyScope is told of.
struct GradientListener {
  // As a backward pass begins, before any gradient is computed: the leaves
  // it will give a gradient to, in the order it will make them final (a
  // function of the graph alone; may be empty). `check` may throw to
  // refuse the pass; every listener's check runs before any pass_begins.
  std::function<void(const std::vector<Tensor>& final_order)> check;
  std::function<void(const std::vector<Tensor>& final_order)> pass_begins;
  // Each of those leaves as it becomes final, in that order.
  GradientReady ready;
};

// Registers a listener on this thread for its lifetime. Every scope alive
// when a backward pass begins is told, in the order the scopes were made
// (one per network's gradients, say); they may end in any order, but on
// the thread that made them. An exception from a listener ends the pass.
class GradientReadyScope {
 public:
  explicit GradientReadyScope(GradientReady ready);
  explicit GradientReadyScope(GradientListener listener);
  ~GradientReadyScope();
  GradientReadyScope(const GradientReadyScope&) = delete;
  GradientReadyScope& operator=(const GradientReadyScope&) = delete;

 private:
  uint64_t id_;
  void* listeners_;  // the making thread's list
};

// Options of grad(), in the libtorch builder style.
class GradOptions {
 public:
  // Record the gradients' own graph, so that they can be differentiated again
  // (implies retain_graph).
  GradOptions& create_graph(bool on) { create_graph_ = on; return *this; }
  // Keep the graph for another backward or grad().
  GradOptions& retain_graph(bool on) { retain_graph_ = on; return *this; }
  // An input the output does not depend on gets an undefined gradient
  // instead of an error.
  GradOptions& allow_unused(bool on) { allow_unused_ = on; return *this; }
  bool create_graph() const { return create_graph_; }
  bool retain_graph() const { return retain_graph_ || create_graph_; }
  bool allow_unused() const { return allow_unused_; }

 private:
  bool create_graph_ = false;
  bool retain_graph_ = false;
  bool allow_unused_ = false;
};

// d(output)/d(inputs[i]) for each input, like torch::autograd::grad, without
// touching any .grad; only the part of the graph between them runs.
// `grad_output` may be omitted for a one-element output.
std::vector<Tensor> grad(const Tensor& output, const std::vector<Tensor>& inputs, const Tensor& grad_output = Tensor(),
                         const GradOptions& options = GradOptions());

}  // namespace pixgrad
