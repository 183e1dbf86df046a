#include <pixgrad/distributed/all_reduce.h>

#include <vector>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/error.h>

namespace pixgrad::distributed {

Tensor all_reduce_sum(const Tensor& input, Communicator& communicator, const std::string& what) {
  PIXGRAD_CHECK(input.defined(), "all_reduce_sum (", what, "): the input is undefined");
  // clone(): the collective works in place, and the input may be shared.
  Tensor output = input.clone();
  communicator.all_reduce(output, ReduceOp::Sum, what);
  Communicator* const world = &communicator;
  // The sum is linear and the same on every rank, so its adjoint is the same
  // sum: d(sum_q loss_q)/d(input_r) = sum_q d(loss_q)/d(output_q).
  return record_differentiable("all_reduce_sum", output, {input},
                               [world, what](const Tensor& grad_output, const BackwardContext&) {
                                 return std::vector<Tensor>{all_reduce_sum(grad_output, *world, what + " (backward)")};
                               });
}

}  // namespace pixgrad::distributed
