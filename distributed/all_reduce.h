// All-reduce as a differentiable op, for values that every rank's forward
// pass combines (the batch statistics of synchronised batch norm).
#pragma once

#include <string>

#include <pixgrad/core/tensor.h>
#include <pixgrad/distributed/communicator.h>

namespace pixgrad::distributed {

// A new tensor holding the element-wise sum of `input` over all ranks.
//
// Backward: the sum is also every other rank's output, so the gradient that
// reaches this rank's input is the sum over ranks of the gradients of their
// outputs. The backward all-reduces (sums) the incoming gradient, and what it
// returns is the gradient of the sum of every rank's loss with respect to
// this rank's input, not of this rank's loss alone. The backward is itself
// an all_reduce_sum, so gradients of gradients flow through it.
//
// Collective in both directions: every rank must call it in the same order
// with the same shape, and must backpropagate through the same graph (the
// backward's all-reduce waits for the other ranks' too). `communicator` must
// outlive the recorded graph. `what` names the collective in timeout
// messages; the backward's is `what` + " (backward)".
Tensor all_reduce_sum(const Tensor& input, Communicator& communicator, const std::string& what);

}  // namespace pixgrad::distributed
