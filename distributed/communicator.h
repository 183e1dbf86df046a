// Collectives among the processes of one training run. Each process is a
// rank; rank 0 is the one that writes files. A Communicator is what a rank
// uses to combine its numbers with the others':
//   - MpiCommunicator (distributed/mpi_communicator.h): processes started by
//     mpirun or srun, CPU tensors (CUDA tensors are staged through the host);
//   - NcclCommunicator (distributed/nccl_communicator.h): CUDA tensors, its
//     NCCL communicator set up through MPI;
//   - single_process(): a world of one, where every collective is the
//     identity, so that code written for N ranks runs unchanged in one.
// Every rank must call the same collectives in the same order with tensors
// of the same shapes; a collective that waits longer than the timeout for
// the others stops the run with a message naming the ranks that did not
// arrive (see CollectiveTimeout).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <pixgrad/core/tensor.h>

namespace pixgrad::distributed {

enum class ReduceOp { Sum, Max };

// An all-reduce under way (Communicator::start_all_reduce).
class PendingAllReduce {
 public:
  virtual ~PendingAllReduce() = default;
  // Returns once the tensor holds the result; waits at most the
  // communicator's timeout, as all_reduce does.
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // The rank among the processes on this machine: which GPU a CUDA rank uses.
  virtual int local_rank() const = 0;
  // "single", "mpi" or "nccl": for messages and logs.
  virtual std::string backend() const = 0;
  // Combines `tensor` element-wise across ranks, in place, and leaves the
  // result on every rank. Float32 or float64; a backend names the devices it
  // takes. `what` names the collective in a timeout message ("G's gradients").
  virtual void all_reduce(Tensor& tensor, ReduceOp op, const std::string& what) = 0;
  // Starts all_reduce(tensor, op, what) and returns at once where the
  // backend can reduce in the background: NCCL runs it on a stream of its
  // own after the kernels queued so far, so that the caller queues more work
  // (the rest of a backward pass) meanwhile. Other backends (MPI, whose
  // collectives progress only inside its calls, and a world of one) reduce
  // before returning. Until wait() returns, `tensor` must not be used and
  // the communicator must live; ranks start reductions in the same order.
  virtual std::unique_ptr<PendingAllReduce> start_all_reduce(Tensor& tensor, ReduceOp op, const std::string& what);
  // The same for a few host numbers (losses, flags); every backend takes them.
  virtual void all_reduce(std::vector<double>& values, ReduceOp op, const std::string& what) = 0;
  // Waits until every rank has called it.
  virtual void barrier(const std::string& what) = 0;
  // Ends every rank of the run at once, with `exit_code`: what a rank does
  // after an error that the others cannot know of (they would otherwise wait
  // for it in their next collective until the timeout).
  [[noreturn]] virtual void abort(int exit_code);

  bool is_root() const { return rank() == 0; }
};

// A world of one.
std::shared_ptr<Communicator> single_process();

// The running program's name ("train_pix2pix"), which starts the messages a
// communicator prints itself, as the program's own errors start.
const char* program_name();

}  // namespace pixgrad::distributed
