#include <pixgrad/layers/forward_hook.h>

#include <utility>

namespace pixgrad::nn {

namespace {
thread_local ForwardHook current_hook;
}  // namespace

ForwardHookGuard::ForwardHookGuard(ForwardHook hook) : previous_(std::move(current_hook)) {
  current_hook = std::move(hook);
}

ForwardHookGuard::~ForwardHookGuard() { current_hook = std::move(previous_); }

Tensor apply_forward_hook(const Module& module, const Tensor& input, const Tensor& output) {
  if (!current_hook) return output;
  const ForwardHook hook = current_hook;
  const ForwardHookGuard suspended(nullptr);  // put back when the hook returns or throws
  return hook(module, input, output);
}

bool forward_hook_installed() { return static_cast<bool>(current_hook); }

}  // namespace pixgrad::nn
