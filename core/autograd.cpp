#include <pixgrad/core/autograd.h>

#include <atomic>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>

namespace pixgrad {

namespace {

thread_local bool grad_mode = true;
// The listeners of the GradientReadyScopes alive on this thread, by id, oldest first.
using Listeners = std::vector<std::pair<uint64_t, GradientListener>>;
thread_local Listeners gradient_listeners;
thread_local uint64_t next_listener_id = 0;

// Reverse-postorder DFS over nodes: every node comes before the nodes that
// produced its inputs. Iterative, because a deep network would overflow the
// stack. The list owns the nodes, so that releasing one node's inputs during
// backward cannot free a node still waiting its turn.
std::vector<std::shared_ptr<Node>> topological_order(const std::shared_ptr<Node>& root) {
  std::vector<std::shared_ptr<Node>> postorder;
  std::unordered_set<Node*> visited{root.get()};
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [node, next_input] = stack.back();
    if (next_input < node->inputs.size()) {
      const Tensor& input = node->inputs[next_input++];
      const std::shared_ptr<Node> producer = input.defined() ? input.grad_fn() : nullptr;
      if (producer && visited.insert(producer.get()).second) stack.push_back({producer, 0});
    } else {
      postorder.push_back(node);
      stack.pop_back();
    }
  }
  return {postorder.rbegin(), postorder.rend()};
}

Tensor sum_of(const Tensor& total, const Tensor& term) { return total.defined() ? add(total, term) : term; }

// Where grad() collects its results: leaves by their storage handle, other
// tensors by the node that produced them (whose pending gradient is theirs).
struct Targets {
  std::unordered_map<const TensorImpl*, size_t> leaves;
  std::unordered_map<const Node*, size_t> producers;
  std::vector<Tensor> gradients;
  std::vector<bool> in_graph;

  // The index of `input` among the targets, or -1.
  long index_of(const Tensor& input) const {
    if (const Node* producer = input.grad_fn().get()) {
      const auto found = producers.find(producer);
      return found == producers.end() ? -1 : static_cast<long>(found->second);
    }
    const auto found = leaves.find(input.impl());
    return found == leaves.end() ? -1 : static_cast<long>(found->second);
  }
};

// True when nothing but `gradient` can reach its elements: its handle and its
// storage have no other owner, and it spans the whole storage. Such a
// gradient can become a leaf's .grad as it is, without the copy.
bool sole_owner_of_elements(const Tensor& gradient) {
  const TensorImpl* impl = gradient.impl();
  return gradient.impl_ptr().use_count() == 1 && impl->storage.use_count() == 1 && impl->offset == 0 &&
         impl->grad_fn == nullptr &&
         impl->storage->bytes() == gradient.nbytes();
}

std::atomic<int64_t> first_gradients_adopted{0}, first_gradients_copied{0};

void accumulate_into_leaf(const Tensor& leaf, Tensor gradient, bool create_graph) {
  const Tensor existing = leaf.grad();
  if (create_graph) {
    // Keeps the gradient's graph; a new tensor, never the gradient itself,
    // which other inputs may share.
    leaf.set_grad(existing.defined() ? add(existing, gradient) : add(gradient, 0.0));
  } else if (!existing.defined()) {
    // A gradient that other inputs or views share is copied, never aliased.
    const bool adopt = sole_owner_of_elements(gradient);
    ++(adopt ? first_gradients_adopted : first_gradients_copied);
    leaf.set_grad(adopt ? std::move(gradient) : gradient.clone());
  } else if (existing.requires_grad()) {
    // From an earlier create_graph backward: a penalty may still use it, so
    // it is replaced, not changed in place.
    leaf.set_grad(add(existing.detach(), gradient));
  } else {
    add_(existing, gradient);
  }
}

// Calls `member` of the listener with `id` if its scope is still alive: a
// listener may end another scope during the pass. The function is copied
// first, since the call may end its own scope too.
template <typename Member, typename... Args>
void call_listener(uint64_t id, Member member, const Args&... args) {
  for (const auto& [listener_id, listener] : gradient_listeners)
    if (listener_id == id) {
      const auto function = listener.*member;
      if (function) function(args...);
      return;
    }
}

// For GradientReadyScope: how many nodes of the pass, in topological order,
// may still add to each leaf that requires a gradient. Once a node is done,
// its leaf inputs are counted down and each leaf that reaches zero is told
// of: all its consumers are done, whether they ran or no gradient reached
// them. The same count, played ahead over the whole order, is the order
// the listeners are given as the pass begins (after every listener's check,
// so that a pass one of them refuses leaves the others as they were).
class LeafCountdown {
 public:
  // `leaves_of[i]`: the leaves node i of the pass can give a gradient to.
  LeafCountdown(std::vector<std::vector<Tensor>> leaves_of, std::vector<uint64_t> listeners)
      : listeners_(std::move(listeners)), leaves_of_(std::move(leaves_of)) {
    if (listeners_.empty()) return;
    for (const std::vector<Tensor>& leaves : leaves_of_)
      for (const Tensor& leaf : leaves) ++remaining_[leaf.impl()];
    std::unordered_map<const TensorImpl*, int> ahead = remaining_;
    std::vector<Tensor> final_order;
    for (const std::vector<Tensor>& leaves : leaves_of_)
      for (const Tensor& leaf : leaves)
        if (--ahead[leaf.impl()] == 0) final_order.push_back(leaf);
    for (const uint64_t id : listeners_) call_listener(id, &GradientListener::check, final_order);
    for (const uint64_t id : listeners_) call_listener(id, &GradientListener::pass_begins, final_order);
  }

  // The leaves each node of `order` can give a gradient to: inputs that
  // required one when the op ran and still do (what the pass gives one to).
  static std::vector<std::vector<Tensor>> leaves_of(const std::vector<std::shared_ptr<Node>>& order) {
    std::vector<std::vector<Tensor>> leaves(order.size());
    for (size_t i = 0; i < order.size(); ++i) {
      const Node& node = *order[i];
      for (size_t k = 0; k < node.inputs.size(); ++k) {
        const Tensor& input = node.inputs[k];
        if (node.input_required_grad[k] && input.defined() && input.requires_grad() && !input.grad_fn())
          leaves[i].push_back(input);  // a handle: the node may free its inputs first
      }
    }
    return leaves;
  }

  // The next node is done.
  void node_done() {
    const size_t node = next_++;
    if (listeners_.empty()) return;
    for (const Tensor& leaf : leaves_of_[node])
      if (--remaining_[leaf.impl()] == 0)
        for (const uint64_t id : listeners_) call_listener(id, &GradientListener::ready, leaf);
  }

 private:
  std::vector<uint64_t> listeners_;
  std::vector<std::vector<Tensor>> leaves_of_;  // per node
  std::unordered_map<const TensorImpl*, int> remaining_;
  size_t next_ = 0;
};

// The listeners a backward pass tells: those alive as it begins.
std::vector<uint64_t> listeners_now() {
  std::vector<uint64_t> ids;
  for (const auto& [id, listener] : gradient_listeners) ids.push_back(id);
  return ids;
}

// The walk shared by backward() (targets == nullptr: every leaf that requires
// a gradient gets it in .grad) and grad() (only the targets, collected).
void run_graph(const Tensor& root, const Tensor& seed, bool retain_graph, bool create_graph, Targets* targets) {
  // Backward functions record only when the gradients must be differentiable.
  const AutoGradMode mode(create_graph);
  const std::shared_ptr<Node> root_node = root.grad_fn();
  if (!root_node) {
    if (targets) return;
    // A pass of one leaf: listeners are told of it like any other.
    LeafCountdown countdown({{root}}, listeners_now());
    accumulate_into_leaf(root, seed, create_graph);
    countdown.node_done();
    return;
  }
  const std::vector<std::shared_ptr<Node>> order = topological_order(root_node);

  // Which nodes must run: with targets, only those between the root and a
  // target. Producers come after their consumers in `order`, so walk it back.
  std::unordered_set<const Node*> must_run;
  const auto input_needed = [&](const Tensor& input) {
    if (!input.defined() || !input.requires_grad()) return false;
    if (!targets) return true;
    const Node* producer = input.grad_fn().get();
    return targets->index_of(input) >= 0 || (producer && must_run.count(producer) > 0);
  };
  bool target_unreached = false;  // some target not found in the part of the graph still held
  if (targets) {
    for (const std::shared_ptr<Node>& node : order)
      for (const Tensor& input : node->inputs)
        if (input.defined() && targets->index_of(input) >= 0)
          targets->in_graph[static_cast<size_t>(targets->index_of(input))] = true;
    for (const bool reached : targets->in_graph) target_unreached = target_unreached || !reached;
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const Node& node = **it;
    if (node.released) {
      // Its inputs are gone: it must run (and so fail) if its inputs needed
      // gradients and, with targets, a target may lie behind it.
      bool needed = false;
      for (const bool required : node.input_required_grad) needed = needed || required;
      if (needed && (!targets || target_unreached)) must_run.insert(&node);
      continue;
    }
    for (size_t i = 0; i < node.inputs.size(); ++i)
      if (node.input_required_grad[i] && input_needed(node.inputs[i])) must_run.insert(&node);
  }

  const std::vector<uint64_t> listeners = targets == nullptr ? listeners_now() : std::vector<uint64_t>();
  LeafCountdown countdown(listeners.empty() ? std::vector<std::vector<Tensor>>() : LeafCountdown::leaves_of(order),
                          listeners);
  std::unordered_map<Node*, Tensor> pending{{root_node.get(), seed}};
  const auto visit = [&](const std::shared_ptr<Node>& node) {
    auto found = pending.find(node.get());
    if (found == pending.end()) return;  // no gradient reached this node
    const Tensor grad_output = std::move(found->second);
    pending.erase(found);
    if (targets) {
      const auto target = targets->producers.find(node.get());
      if (target != targets->producers.end())
        targets->gradients[target->second] = sum_of(targets->gradients[target->second], grad_output);
    }
    if (!must_run.count(node.get())) return;
    PIXGRAD_CHECK(!node->released, "backward: the graph through '", node->op,
                  "' was already freed by an earlier backward(); pass retain_graph to keep it");
    PIXGRAD_CHECK(!create_graph || node->double_backward == DoubleBackward::Supported, "backward: '", node->op,
                  "' cannot be differentiated twice (create_graph): its backward is not itself differentiable "
                  "(docs/core.md lists the ops that are)");

    std::vector<bool> needs(node->inputs.size());
    for (size_t i = 0; i < needs.size(); ++i) needs[i] = node->input_required_grad[i] && input_needed(node->inputs[i]);
    const BackwardContext context(node->inputs, node->saved, needs, create_graph);
    std::vector<Tensor> grads = node->backward(grad_output, context);
    PIXGRAD_CHECK(grads.size() == node->inputs.size(), "backward: '", node->op, "' returned ", grads.size(),
                  " gradients for ", node->inputs.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      const Tensor& input = node->inputs[i];
      if (!needs[i] || !grads[i].defined()) continue;
      PIXGRAD_CHECK(grads[i].shape() == input.shape(), "backward: '", node->op, "' gave a gradient of shape ",
                    shape_str(grads[i].shape()), " for input ", i, " of shape ", shape_str(input.shape()));
      PIXGRAD_CHECK(grads[i].dtype() == input.dtype() && grads[i].device() == input.device(), "backward: '",
                    node->op, "' gave a ", to_string(grads[i].dtype()), " gradient on ", grads[i].device().str(),
                    " for input ", i, ", a ", to_string(input.dtype()), " tensor on ", input.device().str());
      if (Node* producer = input.grad_fn().get()) {
        Tensor& slot = pending[producer];
        slot = sum_of(slot, grads[i]);
      } else if (targets) {
        const long target = targets->index_of(input);
        if (target >= 0)
          targets->gradients[static_cast<size_t>(target)] = sum_of(targets->gradients[static_cast<size_t>(target)], grads[i]);
      } else {
        accumulate_into_leaf(input, std::move(grads[i]), create_graph);
      }
    }
    // Free the inputs and saved tensors now: the graph is single-use, as in PyTorch.
    if (retain_graph) return;
    node->backward = nullptr;
    node->inputs.clear();
    node->saved.clear();
    node->released = true;
  };
  for (const std::shared_ptr<Node>& node : order) {
    visit(node);
    countdown.node_done();
  }
}

// The gradient to start from: `gradient`, or 1 for a one-element root.
Tensor seed_for(const char* what, const Tensor& root, const Tensor& gradient) {
  PIXGRAD_CHECK(root.defined(), what, ": called on an undefined tensor");
  PIXGRAD_CHECK(root.requires_grad(), what, ": tensor ", shape_str(root.shape()),
                " does not require grad (no input of the ops that produced it requires grad)");
  if (!gradient.defined()) {
    PIXGRAD_CHECK(root.numel() == 1, what, ": tensor ", shape_str(root.shape()),
                  " is not a scalar; pass a gradient of the same shape");
    return Tensor::ones(root.shape(), root.device(), root.dtype());
  }
  check_same(what, gradient, root);
  return gradient;
}

}  // namespace

BackwardContext::BackwardContext(const std::vector<Tensor>& inputs, const std::vector<Tensor>& saved,
                                 std::vector<bool> needs_input_grad, bool create_graph)
    : inputs_(inputs), saved_(saved), needs_input_grad_(std::move(needs_input_grad)), create_graph_(create_graph) {}

bool grad_mode_enabled() { return grad_mode; }

GradientReadyScope::GradientReadyScope(GradientReady ready)
    : GradientReadyScope(GradientListener{{}, {}, std::move(ready)}) {}

GradientReadyScope::GradientReadyScope(GradientListener listener)
    : id_(next_listener_id++), listeners_(&gradient_listeners) {
  gradient_listeners.emplace_back(id_, std::move(listener));
}

GradientReadyScope::~GradientReadyScope() {
  Listeners& listeners = *static_cast<Listeners*>(listeners_);
  for (auto it = listeners.begin(); it != listeners.end(); ++it)
    if (it->first == id_) {
      listeners.erase(it);
      return;
    }
}

AutoGradMode::AutoGradMode(bool enabled) : previous_(grad_mode) { grad_mode = enabled; }
AutoGradMode::~AutoGradMode() { grad_mode = previous_; }

NoGradGuard::NoGradGuard() : previous_(grad_mode) { grad_mode = false; }
NoGradGuard::~NoGradGuard() { grad_mode = previous_; }

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!grad_mode) return false;
  for (const Tensor& input : inputs)
    if (input.defined() && input.requires_grad()) return true;
  return false;
}

Tensor record(const char* op, Tensor output, std::vector<Tensor> inputs, BackwardFunction backward,
              std::vector<Tensor> saved, DoubleBackward double_backward) {
  if (!any_requires_grad(inputs)) return output;
  PIXGRAD_CHECK(output.defined(), "record: '", op, "' gave an undefined output");
  PIXGRAD_CHECK(!output.grad_fn(), "record: the output of '", op, "' was already produced by '", output.grad_fn()->op,
                "'; record a new tensor (a copy or a view)");
  PIXGRAD_CHECK(!output.requires_grad(), "record: the output of '", op,
                "' is a leaf that requires a gradient (a parameter?); record a new tensor (a copy or a view)");
  auto node = std::make_shared<Node>();
  node->op = op;
  node->inputs = std::move(inputs);
  for (const Tensor& input : node->inputs) node->input_required_grad.push_back(input.defined() && input.requires_grad());
  for (const Tensor& tensor : saved) node->saved.push_back(tensor.defined() ? tensor.detach() : Tensor());
  node->backward = std::move(backward);
  node->double_backward = double_backward;
  output.impl()->grad_fn = std::move(node);
  output.impl()->requires_grad = true;
  return output;
}

Tensor record_differentiable(const char* op, Tensor output, std::vector<Tensor> inputs, BackwardFunction backward,
                             std::vector<Tensor> saved) {
  return record(op, std::move(output), std::move(inputs), std::move(backward), std::move(saved),
                DoubleBackward::Supported);
}

FirstGradientCounts first_gradient_counts() { return {first_gradients_adopted.load(), first_gradients_copied.load()}; }

void run_backward(const Tensor& root, const Tensor& gradient, bool retain_graph, bool create_graph) {
  const Tensor seed = seed_for("backward", root, gradient);
  run_graph(root, seed, retain_graph || create_graph, create_graph, nullptr);
}

std::vector<Tensor> grad(const Tensor& output, const std::vector<Tensor>& inputs, const Tensor& grad_output,
                         const GradOptions& options) {
  const Tensor seed = seed_for("grad", output, grad_output);
  Targets targets;
  targets.gradients.resize(inputs.size());
  targets.in_graph.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& input = inputs[i];
    PIXGRAD_CHECK(input.defined() && input.requires_grad(), "grad: input ", i,
                  input.defined() ? " " + shape_str(input.shape()) : std::string(),
                  " does not require grad");
    PIXGRAD_CHECK(targets.index_of(input) < 0, "grad: input ", i, " repeats input ", targets.index_of(input));
    if (const Node* producer = input.grad_fn().get())
      targets.producers[producer] = i;
    else
      targets.leaves[input.impl()] = i;
  }
  const long root_target = targets.index_of(output);
  if (root_target >= 0) {  // d(output)/d(output)
    targets.in_graph[static_cast<size_t>(root_target)] = true;
    // A produced root is collected at its node like any target; a leaf has none.
    if (!output.grad_fn()) targets.gradients[static_cast<size_t>(root_target)] = seed;
  }
  run_graph(output, seed, options.retain_graph(), options.create_graph(), &targets);

  for (size_t i = 0; i < inputs.size(); ++i) {
    if (targets.gradients[i].defined()) continue;
    // Reached, but every path's gradient was zero (e.g. relu's second derivative).
    if (targets.in_graph[i]) {
      targets.gradients[i] = Tensor::zeros_like(inputs[i]);
      continue;
    }
    PIXGRAD_CHECK(options.allow_unused(), "grad: input ", i, " ", shape_str(inputs[i].shape()),
                  " is not used to compute the output (GradOptions().allow_unused(true) returns an undefined "
                  "gradient for it)");
  }
  return targets.gradients;
}

}  // namespace pixgrad
