// The ranks of a run that mpirun or srun started: MPI for process start-up
// and for collectives on CPU tensors and host numbers.
//
// Why the collectives take the long way round. MPI_Allreduce may add the
// ranks' numbers in a different order on each rank (recursive doubling
// does), and replicas whose gradients differ in the last bit drift apart.
// A reduce-scatter (each slice summed on one rank) followed by an
// all-gather hands every rank the very same bits, and for a given size and
// world the library picks the same algorithm every time, so runs reproduce.
//
// Why it polls. Each collective is started non-blocking and tested until it
// completes or the timeout passes. Every rank also tells rank 0 which
// collective it has reached, so that rank 0, on a timeout, names the ranks
// that never arrived; then it ends every rank (MPI_Abort). The others wait a
// little longer than rank 0 before giving up themselves, so that the message
// naming the ranks is the one printed.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <pixgrad/distributed/communicator.h>

namespace pixgrad::distributed {

struct WorldOptions {
  // Seconds a collective waits for the other ranks before the run is
  // stopped. Rank 0 writes snapshots and evaluates alone while the others
  // wait, so this must exceed the longest of those.
  double timeout_seconds = 600;
};

// How many processes the launcher started, from the environment that
// mpirun (Open MPI, MPICH) or srun gives each; 1 when there is none.
int launched_processes();
// This process's rank among them, from the same environment (0 when none).
int launched_rank();
// Whether mpirun or srun started this process (even as the only one).
bool started_by_launcher();

// The threads a rank runs when `local_ranks` ranks share a machine of
// `machine_cores` cores (or a job's cpuset of as many) and this rank may
// run on `usable_cores` of them
// (its binding): its share of the machine, and no more than it is bound
// to. A rank bound to cores of its own gets all of them; ranks bound to a
// socket each, or not bound, split the machine.
int threads_per_local_rank(int usable_cores, int machine_cores, int local_ranks);

// The CPUs a Linux CPU list names ("0-3,8,10-11": 7), or 0 if it is not one.
int cpu_list_size(const std::string& list);
// The CPUs of this process's cgroup cpuset: the job's share of the machine
// under Slurm or in a container, which every rank of the job on this
// machine shares. 0 where there is none to read.
int cpuset_cpu_count();

// The ranks this process belongs to: an MpiCommunicator when the launcher
// started several processes (MPI is initialised here and finalised when the
// last reference goes), else single_process(). A launch of several
// processes in a build without MPI is an error saying so.
std::shared_ptr<Communicator> join_world(const WorldOptions& options = {});

class MpiCommunicator final : public Communicator {
 public:
  // Initialises MPI (once per process). Use join_world().
  explicit MpiCommunicator(const WorldOptions& options);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override;
  int size() const override;
  int local_rank() const override;
  // The ranks on this machine.
  int local_size() const;
  std::string backend() const override { return "mpi"; }
  // CPU tensors in place; CUDA tensors through a host copy.
  void all_reduce(Tensor& tensor, ReduceOp op, const std::string& what) override;
  void all_reduce(std::vector<double>& values, ReduceOp op, const std::string& what) override;
  void barrier(const std::string& what) override;
  [[noreturn]] void abort(int exit_code) override;
  // Copies `bytes` bytes at `data` from rank `root` to every rank (what sets
  // up a NCCL communicator).
  void broadcast(void* data, size_t bytes, int root, const std::string& what);
  double timeout_seconds() const;
  // From now on (a run sets its own once its options are read and checked).
  void set_timeout_seconds(double seconds);
  // Called on this rank when one of its collectives times out, after the
  // message and before every rank is stopped (a trainer saves its completed
  // steps there); an empty function removes it.
  void on_timeout(std::function<void()> before_stopping);

  // For the collectives another transport carries (NCCL), so that their
  // timeouts name the late ranks as this one's own do. reached(): this rank
  // has reached the next collective (rank 0 is told). waiting(): called
  // while this rank waits in one (rank 0 takes in the others' reports, the
  // others answer rank 0's ping). timed_out(): the message naming the late
  // ranks, the on_timeout function, `last` (the other transport's own
  // release), and every rank stopped.
  void reached(const std::string& what);
  void waiting();
  [[noreturn]] void timed_out(const std::string& what, double waited, const std::function<void()>& last = {});

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace pixgrad::distributed
