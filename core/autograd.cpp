#include <pixgrad/core/autograd.h>

#include <unordered_map>
#include <unordered_set>

#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>

namespace pixgrad {

namespace {
thread_local bool grad_mode = true;

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

void accumulate_into_leaf(const Tensor& leaf, const Tensor& gradient) {
  const Tensor existing = leaf.grad();
  if (!existing.defined()) {
    leaf.set_grad(gradient.clone());
  } else {
    add_(existing, gradient);
  }
}

}  // namespace

bool grad_mode_enabled() { return grad_mode; }

NoGradGuard::NoGradGuard() : previous_(grad_mode) { grad_mode = false; }
NoGradGuard::~NoGradGuard() { grad_mode = previous_; }

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!grad_mode) return false;
  for (const Tensor& input : inputs)
    if (input.defined() && input.requires_grad()) return true;
  return false;
}

Tensor record(const char* op, Tensor output, std::vector<Tensor> inputs, BackwardFunction backward) {
  if (!any_requires_grad(inputs)) return output;
  auto node = std::make_shared<Node>();
  node->op = op;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  node->output_shape = output.shape();
  output.impl()->grad_fn = std::move(node);
  output.impl()->requires_grad = true;
  return output;
}

void run_backward(const Tensor& root, const Tensor& gradient, bool retain_graph) {
  PIXGRAD_CHECK(root.defined(), "backward: called on an undefined tensor");
  PIXGRAD_CHECK(root.requires_grad(), "backward: tensor ", shape_str(root.shape()),
                " does not require grad (no input of the ops that produced it requires grad)");
  Tensor seed = gradient;
  if (!seed.defined()) {
    PIXGRAD_CHECK(root.numel() == 1, "backward: tensor ", shape_str(root.shape()),
                  " is not a scalar; pass a gradient of the same shape");
    seed = Tensor::ones(root.shape(), root.device(), root.dtype());
  }
  check_same("backward (gradient vs tensor)", seed, root);

  NoGradGuard no_grad;  // gradients are plain values: no higher-order graphs
  const std::shared_ptr<Node> root_node = root.grad_fn();
  if (!root_node) {
    accumulate_into_leaf(root, seed);
    return;
  }

  std::unordered_map<Node*, Tensor> pending{{root_node.get(), seed}};
  for (const std::shared_ptr<Node>& node : topological_order(root_node)) {
    PIXGRAD_CHECK(!node->released, "backward: the graph through '", node->op,
                  "' was already freed by an earlier backward()");
    auto found = pending.find(node.get());
    if (found == pending.end()) continue;  // no gradient reached this node
    const Tensor grad_output = std::move(found->second);
    pending.erase(found);

    std::vector<Tensor> grads = node->backward(grad_output);
    PIXGRAD_CHECK(grads.size() == node->inputs.size(), "backward: '", node->op, "' returned ", grads.size(),
                  " gradients for ", node->inputs.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      const Tensor& input = node->inputs[i];
      if (!input.defined() || !input.requires_grad() || !grads[i].defined()) continue;
      PIXGRAD_CHECK(grads[i].shape() == input.shape(), "backward: '", node->op, "' gave a gradient of shape ",
                    shape_str(grads[i].shape()), " for input ", i, " of shape ", shape_str(input.shape()));
      if (Node* producer = input.grad_fn().get()) {
        auto [slot, inserted] = pending.try_emplace(producer, grads[i]);
        if (!inserted) slot->second = add(slot->second, grads[i]);
      } else {
        accumulate_into_leaf(input, grads[i]);
      }
    }
    // Free the saved tensors now: the graph is single-use, as in PyTorch.
    if (retain_graph) continue;
    node->backward = nullptr;
    node->inputs.clear();
    node->released = true;
  }
}

}  // namespace pixgrad
