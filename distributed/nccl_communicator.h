// Collectives on CUDA tensors among the ranks that mpirun or srun started,
// one GPU per rank: NCCL moves the numbers between the GPUs, MPI only sets
// the NCCL communicator up (rank 0 draws NCCL's id and broadcasts it) and
// carries what is not a CUDA tensor (host numbers, barriers).
//
// Each rank uses a GPU of its own: cuda:local_rank where every rank sees
// the machine's GPUs (CUDA_VISIBLE_DEVICES chooses which), its first where
// the launcher gave it its own (see nccl_rank_device); ranks sharing one are
// refused when NCCL is set up. An all-reduce is queued on
// pixgrad's stream of that device, after the kernels that produced the
// tensor and before those that read it, and returns once it has completed:
// like the MPI communicator's, it waits at most the timeout for the other
// ranks, then stops the run with a message naming this rank and the
// collective.
//
// This header needs neither CUDA nor NCCL, so that every build can include
// it; in a build without NCCL (no CUDA, or no MPI) constructing one is an
// error saying so.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <pixgrad/core/device.h>
#include <pixgrad/distributed/communicator.h>
#include <pixgrad/distributed/mpi_communicator.h>

namespace pixgrad::distributed {

// True when pixgrad was built with NCCL (a CUDA build that found MPI and NCCL).
bool built_with_nccl();

// The device of the rank with `local_rank` on a machine where it sees
// `device_count` usable GPUs, when `requested` was asked for:
// cuda:(local_rank % device_count), so that ranks given GPUs of their own
// by the launcher take their first. `requested` must be a CUDA device,
// cuda:0 (what "cuda" means: this rank's GPU) or that device itself;
// anything else, or no GPU, is an error that says what to change.
Device nccl_rank_device(const Device& requested, int local_rank, int device_count);

// The error to give when two ranks are on one GPU ("" when none are):
// `gpus` holds each rank's GPU, by rank, as a number that stands for its
// machine and PCI address, equal for the same GPU.
std::string describe_shared_gpus(const std::vector<uint64_t>& gpus);

// The checks an all-reduce makes before NCCL sees `tensor`: defined,
// float32 or float64, and on `device` (the communicator's). Errors name the
// collective `what`.
void check_nccl_tensor(const Tensor& tensor, const Device& device, const std::string& what);

class NcclCommunicator final : public Communicator {
 public:
  // Sets up NCCL across the ranks of `bootstrap` on this rank's GPU (see
  // nccl_rank_device); every rank must construct one at the same point.
  NcclCommunicator(std::shared_ptr<MpiCommunicator> bootstrap, Device device);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override;
  int size() const override;
  int local_rank() const override;
  std::string backend() const override { return "nccl"; }
  // CUDA tensors on device(), in place; a CPU tensor is an error.
  void all_reduce(Tensor& tensor, ReduceOp op, const std::string& what) override;
  // The same on a stream of its own, after the work queued so far on
  // pixgrad's stream; wait() polls for its end within the timeout.
  std::unique_ptr<PendingAllReduce> start_all_reduce(Tensor& tensor, ReduceOp op, const std::string& what) override;
  // Host numbers and barriers go through the MPI communicator.
  void all_reduce(std::vector<double>& values, ReduceOp op, const std::string& what) override;
  void barrier(const std::string& what) override;
  [[noreturn]] void abort(int exit_code) override;

  // The GPU this rank's collectives run on.
  Device device() const;

  struct State;  // public for the pending reductions' sake; defined in the .cpp only

 private:
  std::unique_ptr<State> state_;
};

// An NcclCommunicator as a Communicator; in a build without NCCL, an error
// saying that NCCL is not built in.
std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<MpiCommunicator> bootstrap, Device device);

}  // namespace pixgrad::distributed
