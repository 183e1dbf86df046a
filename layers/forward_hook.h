// Forward hooks, in the spirit of PyTorch's register_module_forward_hook but
// scoped to a thread: while a ForwardHookGuard lives, every layer of layers/
// that runs forward on its thread hands (itself, its input, its output) to
// the hook and returns what the hook returns — the output itself to only
// observe, or a replacement. For tools that need to see what a network
// computes without a copy of its architecture: a table of every
// convolution's shapes, a count of the backward passes through each layer.
#pragma once

#include <functional>

#include <pixgrad/core/tensor.h>
#include <pixgrad/layers/module.h>

namespace pixgrad::nn {

using ForwardHook = std::function<Tensor(const Module& module, const Tensor& input, const Tensor& output)>;

// Installs `hook` on this thread for its lifetime, then puts back the hook
// it replaced (none, or an outer guard's). The hook is not called for layers
// that it runs itself.
class ForwardHookGuard {
 public:
  explicit ForwardHookGuard(ForwardHook hook);
  ~ForwardHookGuard();
  ForwardHookGuard(const ForwardHookGuard&) = delete;
  ForwardHookGuard& operator=(const ForwardHookGuard&) = delete;

 private:
  ForwardHook previous_;
};

// The end of a layer's forward: `output`, or what this thread's hook makes of it.
Tensor apply_forward_hook(const Module& module, const Tensor& input, const Tensor& output);
// Whether a hook is installed on this thread (a layer that fuses the ops after
// it does so only when nothing needs to see its own output).
bool forward_hook_installed();

}  // namespace pixgrad::nn
