#include <pixgrad/distributed/nccl_communicator.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <thread>
#include <utility>

#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/tensor.h>
#include <pixgrad/distributed/agreement.h>

#if PIXGRAD_WITH_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#include <unistd.h>  // gethostname

#include <pixgrad/kernels/cuda/runtime.cuh>
#endif

namespace pixgrad::distributed {

// ---- what every build has: the checks made before NCCL is involved --------

Device nccl_rank_device(const Device& requested, int local_rank, int device_count) {
  PIXGRAD_CHECK(requested.is_cuda(), "distributed: NCCL runs on CUDA devices, not ", requested.str(),
                " (the MPI communicator takes CPU ranks)");
  PIXGRAD_CHECK(local_rank >= 0, "distributed: local rank ", local_rank, " is negative");
  PIXGRAD_CHECK(device_count > 0, "distributed: NCCL needs a GPU, but this machine has no usable CUDA device");
  // Local ranks take the GPUs they see in turn. Where a launcher gives each
  // rank GPUs of its own (srun --gpus-per-task, CUDA_VISIBLE_DEVICES per
  // rank), a rank sees fewer GPUs than there are local ranks, and its own
  // come first. Two ranks that end up on one GPU are found when NCCL is set
  // up (describe_shared_gpus).
  const int index = local_rank % device_count;
  // "cuda" parses as cuda:0 and means "this rank's GPU"; a rank cannot be
  // moved to another index, which would collide with another rank's GPU.
  PIXGRAD_CHECK(requested.index() == 0 || requested.index() == index, "distributed: local rank ", local_rank,
                " runs on cuda:", index, " (one GPU per rank), not ", requested.str(),
                ": ask for \"cuda\" and choose the machine's GPUs with CUDA_VISIBLE_DEVICES");
  return Device::cuda(index);
}

std::string describe_shared_gpus(const std::vector<uint64_t>& gpus) {
  std::map<uint64_t, size_t> first_rank;
  for (size_t rank = 0; rank < gpus.size(); ++rank) {
    const auto [found, fresh] = first_rank.emplace(gpus[rank], rank);
    if (!fresh)
      return "distributed: ranks " + std::to_string(found->second) + " and " + std::to_string(rank) +
             " are on the same GPU, and NCCL needs one GPU per rank: start at most as many ranks on a machine as "
             "it has GPUs, or give each rank its own (CUDA_VISIBLE_DEVICES, srun --gpus-per-task=1)";
  }
  return "";
}

void check_nccl_tensor(const Tensor& tensor, const Device& device, const std::string& what) {
  PIXGRAD_CHECK(tensor.defined(), "distributed: ", what, ": all-reduce of an undefined tensor");
  PIXGRAD_CHECK(tensor.is_cuda(), "distributed: ", what, ": the NCCL all-reduce takes CUDA tensors, not a ",
                tensor.device().str(), " tensor");
  PIXGRAD_CHECK(tensor.dtype() == DType::Float32 || tensor.dtype() == DType::Float64, "distributed: ", what,
                ": all-reduce takes float32 or float64 tensors, not ", to_string(tensor.dtype()));
  PIXGRAD_CHECK(tensor.device() == device, "distributed: ", what, ": the tensor is on ", tensor.device().str(),
                " but this rank's NCCL communicator is on ", device.str());
}

#if PIXGRAD_WITH_NCCL

bool built_with_nccl() { return true; }

namespace {

constexpr int kTimeoutExitCode = 4;  // what the MPI communicator exits with on a timeout

std::string nccl_error(ncclResult_t result, ncclComm_t comm) {
  std::string text = ncclGetErrorString(result);
  // The last error's details (which peer, which socket), when NCCL has them.
  const char* details = ncclGetLastError(comm);
  if (details != nullptr && *details != '\0') text += std::string(": ") + details;
  // Messages are one line each.
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

// A communicator that never blocks returns ncclInProgress while it carries
// a call out in the background: not an error, the caller polls for the end.
void check_nccl(ncclResult_t result, const char* call, ncclComm_t comm = nullptr) {
  if (result == ncclSuccess || result == ncclInProgress) return;
  fail("distributed: ", call, " failed: ", nccl_error(result, comm));
}

ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::Max ? ncclMax : ncclSum; }

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Calls `busy` until it returns false (true then), or until `limit` seconds
// have passed (false). Spins briefly, then sleeps between calls, so that a
// rank waiting for a slow one leaves the CPU to it.
template <typename Busy>
bool poll(Busy busy, double limit) {
  const auto start = std::chrono::steady_clock::now();
  for (int polls = 0; busy(); ++polls) {
    if (seconds_since(start) > limit) return false;
    if (polls > 2000) std::this_thread::sleep_for(std::chrono::microseconds(polls > 20000 ? 1000 : 50));
  }
  return true;
}

}  // namespace

struct NcclCommunicator::State {
  std::shared_ptr<MpiCommunicator> mpi;
  Device device = Device::cuda(0);
  ncclComm_t comm = nullptr;
  cudaEvent_t done = nullptr;  // recorded after each collective, polled for its end
  cudaStream_t side = nullptr;  // where started reductions run (start_all_reduce)
  // Recorded on `side` after each started reduction. NCCL needs one order
  // of a communicator's collectives on every rank, and kernels of two
  // streams could run in either: a collective on pixgrad's stream waits
  // for the started ones first.
  cudaEvent_t side_tail = nullptr;

  ~State() {
    if (done != nullptr && cudaEventDestroy(done) != cudaSuccess) warn("cudaEventDestroy failed");
    if (comm != nullptr) release();
    if (side_tail != nullptr && cudaEventDestroy(side_tail) != cudaSuccess) warn("cudaEventDestroy failed");
    if (side != nullptr && cudaStreamDestroy(side) != cudaSuccess) warn("cudaStreamDestroy failed");
  }

  // Destructors cannot throw: what goes wrong there is only reported.
  void warn(const char* what) const noexcept {
    std::fprintf(stderr, "%s: rank %d: closing the NCCL communicator on %s: %s\n", program_name(), mpi->rank(),
                 device.str().c_str(), what);
  }

  // The others give rank 0 a head start, as with the MPI communicator, so
  // that one message, rank 0's, is the one printed before the run stops.
  double limit() const {
    const double timeout = mpi->timeout_seconds();
    return mpi->rank() == 0 ? timeout : timeout * 1.05 + 5;
  }

  // Whether NCCL is still carrying out the last call on the communicator;
  // an asynchronous error (a peer died, a network failure) stops the run:
  // the communicator cannot be used again, and the other ranks wait in it.
  bool communicator_busy(const std::string& what, const char* step) {
    ncclResult_t state = ncclSuccess;
    check_nccl(ncclCommGetAsyncError(comm, &state), "ncclCommGetAsyncError", comm);
    if (state == ncclInProgress) return true;
    if (state != ncclSuccess) stop(what, step, "failed: " + nccl_error(state, comm));
    return false;
  }

  // Whether the device is still running the work queued before `event`.
  static bool collective_running(cudaEvent_t event) {
    const cudaError_t status = cudaEventQuery(event);
    if (status == cudaErrorNotReady) {
      // Not an error, but the runtime may keep it as the last error, which
      // the next kernel launch's check would then report as its own.
      cudaGetLastError();
      return true;
    }
    PIXGRAD_CUDA_CHECK(status);
    return false;
  }

  // Waits until `busy` returns false, answering the MPI communicator's
  // questions meanwhile; past the timeout, the MPI communicator names the
  // late ranks (they report each collective they reach, see begin), NCCL's
  // work is abandoned, and every rank is stopped. The communicator is
  // aborted last, so that the others, still answering, are not stopped by
  // its error before the late ranks are named.
  template <typename Busy>
  void wait(Busy busy, const std::string& what, const char* step) {
    const auto tended = [&] {
      mpi->waiting();
      return busy();
    };
    if (poll(tended, limit())) return;
    mpi->timed_out(what + " (" + step + " on " + device.str() + ")", limit(), [this] { abort_communicator(); });
  }

  // This rank has reached a collective: every rank counts NCCL's
  // collectives with MPI's own, so that a timeout names the late ranks.
  void begin(const std::string& what) { mpi->reached(what); }

  // Every rank learns every rank's GPU (a number for its machine and PCI
  // address), and all refuse alike, before NCCL, when two share one: NCCL
  // would fail on it. Rank 0 alone prints the refusal.
  void refuse_shared_gpus() {
    char bus[32] = {};
    PIXGRAD_CUDA_CHECK(cudaDeviceGetPCIBusId(bus, sizeof bus - 1, device.index()));
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    // The digest cut to 52 bits: exact in the doubles the ranks sum, where
    // each rank fills only its own slot.
    std::vector<double> slots(static_cast<size_t>(mpi->size()), 0.0);
    slots[static_cast<size_t>(mpi->rank())] = static_cast<double>(digest_of(std::string(host) + "/" + bus) >> 12);
    mpi->all_reduce(slots, ReduceOp::Sum, "the ranks' GPUs");
    const std::string shared = describe_shared_gpus(std::vector<uint64_t>(slots.begin(), slots.end()));
    if (!shared.empty()) throw AgreedError(shared, mpi->rank() == 0);
  }

  // Rank 0 draws NCCL's id, MPI hands it to every rank, and every rank joins
  // on its own GPU. The communicator never blocks, so that a rank that never
  // joins is caught by the timeout instead of hanging the others.
  void connect() {
    refuse_shared_gpus();
    ncclUniqueId id{};
    if (mpi->rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    mpi->broadcast(&id, sizeof id, 0, "NCCL set-up");
    cuda_activate(device.index());  // NCCL binds the communicator to the current device
    begin("NCCL set-up");
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    check_nccl(ncclCommInitRankConfig(&comm, mpi->size(), id, mpi->rank(), &config), "ncclCommInitRankConfig",
               comm);
    wait([&] { return communicator_busy("NCCL set-up", "ncclCommInitRankConfig"); }, "NCCL set-up",
         "ncclCommInitRankConfig");
    PIXGRAD_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  }

  // NCCL's ring (and tree) all-reduce adds each element's values across the
  // ranks once, in an order fixed by the communicator and the size (the same
  // algorithm, chunking and ring every call), and then copies that sum to
  // every rank: every rank gets the very same bits, and a run reproduces.
  // That holds while NCCL picks the same algorithm and protocol for a size,
  // which depends on the machine's topology and NCCL's version (NCCL_ALGO
  // and NCCL_PROTO pin them).
  void all_reduce(void* data, size_t count, ncclDataType_t type, ReduceOp op, const std::string& what) {
    // On pixgrad's stream of this device: after the kernels that wrote the
    // tensor, before any that read it.
    cuda_activate(device.index());
    begin(what);
    cudaStream_t stream = pixgrad::cuda::current_stream();
    if (side_tail != nullptr) PIXGRAD_CUDA_CHECK(cudaStreamWaitEvent(stream, side_tail, 0));
    check_nccl(ncclAllReduce(data, data, count, type, nccl_op(op), comm, stream), "ncclAllReduce", comm);
    bool queued = false;
    wait(
        [&] {
          // First NCCL queues it (in the background: the call may return
          // before the kernel is on the stream), then the device runs it.
          if (communicator_busy(what, "NCCL all-reduce")) return true;
          if (!queued) {
            PIXGRAD_CUDA_CHECK(cudaEventRecord(done, stream));
            queued = true;
          }
          return collective_running(done);
        },
        what, "NCCL all-reduce");
  }

  // Queues an all-reduce on the side stream, after everything queued so far
  // on pixgrad's stream, and returns an event recorded after it once NCCL
  // has queued it (the caller owns the event).
  cudaEvent_t start(void* data, size_t count, ncclDataType_t type, ReduceOp op, const std::string& what) {
    cuda_activate(device.index());
    if (side == nullptr) {
      PIXGRAD_CUDA_CHECK(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking));
      PIXGRAD_CUDA_CHECK(cudaEventCreateWithFlags(&side_tail, cudaEventDisableTiming));
    }
    cudaEvent_t produced = nullptr, reduced = nullptr;
    PIXGRAD_CUDA_CHECK(cudaEventCreateWithFlags(&produced, cudaEventDisableTiming));
    PIXGRAD_CUDA_CHECK(cudaEventRecord(produced, pixgrad::cuda::current_stream()));
    PIXGRAD_CUDA_CHECK(cudaStreamWaitEvent(side, produced, 0));
    PIXGRAD_CUDA_CHECK(cudaEventDestroy(produced));  // released once the side stream has passed it
    // Made before the reduction is queued: nothing after it may fail but
    // the recording, which a broken device alone refuses.
    PIXGRAD_CUDA_CHECK(cudaEventCreateWithFlags(&reduced, cudaEventDisableTiming));
    begin(what);
    const ncclResult_t queued = ncclAllReduce(data, data, count, type, nccl_op(op), comm, side);
    if (queued != ncclSuccess && queued != ncclInProgress) (void)cudaEventDestroy(reduced);
    check_nccl(queued, "ncclAllReduce", comm);
    wait([&] { return communicator_busy(what, "NCCL all-reduce"); }, what, "NCCL all-reduce");
    PIXGRAD_CUDA_CHECK(cudaEventRecord(reduced, side));
    PIXGRAD_CUDA_CHECK(cudaEventRecord(side_tail, side));
    return reduced;
  }

  // Waits for a reduction start() queued, within the timeout; afterwards
  // pixgrad's stream is ordered after it too.
  void finish(cudaEvent_t reduced, const std::string& what) {
    wait(
        [&] { return communicator_busy(what, "NCCL all-reduce") || collective_running(reduced); },
        what, "NCCL all-reduce");
  }

  // One line naming this rank and the collective, then every rank stops:
  // the others wait in the collective and cannot learn of it otherwise.
  [[noreturn]] void stop(const std::string& what, const char* step, const std::string& why) {
    std::fprintf(stderr, "\n%s: rank %d: %s (%s on %s) %s; stopping every rank (the last checkpoint written is "
                 "kept)\n", program_name(), mpi->rank(), what.c_str(), step, device.str().c_str(), why.c_str());
    std::fflush(nullptr);
    abort_communicator();
    mpi->abort(kTimeoutExitCode);
  }

  // Releases NCCL's resources without waiting for the other ranks.
  void abort_communicator() {
    if (comm == nullptr) return;
    ncclCommAbort(comm);  // its result changes nothing: the communicator is gone either way
    comm = nullptr;
  }

  // At the end of a run every rank gets here together: the communicator is
  // finalised (in-flight work flushed, peers told) and destroyed. While an
  // exception unwinds, this rank is leaving alone: waiting for the others
  // would take the whole timeout, so the communicator is aborted instead.
  void release() noexcept {
    if (std::uncaught_exceptions() > 0) return abort_communicator();
    const ncclResult_t finalize = ncclCommFinalize(comm);
    const bool closed = (finalize == ncclSuccess || finalize == ncclInProgress) &&
                        poll([&] { return communicator_state() == ncclInProgress; }, limit()) &&
                        communicator_state() == ncclSuccess;
    if (!closed) {
      warn("ncclCommFinalize failed or did not finish in time; aborting it");
      return abort_communicator();
    }
    if (ncclCommDestroy(comm) != ncclSuccess) warn("ncclCommDestroy failed");
    comm = nullptr;
  }

  // The communicator's state, or the error of asking for it.
  ncclResult_t communicator_state() const noexcept {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t asked = ncclCommGetAsyncError(comm, &state);
    return asked == ncclSuccess ? state : asked;
  }
};

NcclCommunicator::NcclCommunicator(std::shared_ptr<MpiCommunicator> bootstrap, Device device)
    : state_(std::make_unique<State>()) {
  PIXGRAD_CHECK(bootstrap != nullptr, "distributed: NCCL is set up through an MPI communicator, and none was given");
  state_->mpi = std::move(bootstrap);
  std::string reason;
  const int devices = cuda_device_count(&reason);
  PIXGRAD_CHECK(devices > 0, "distributed: rank ", state_->mpi->rank(), ": NCCL needs a GPU, but CUDA finds none: ",
                reason);
  state_->device = nccl_rank_device(device, state_->mpi->local_rank(), devices);
  state_->connect();
}

NcclCommunicator::~NcclCommunicator() = default;

int NcclCommunicator::rank() const { return state_->mpi->rank(); }
int NcclCommunicator::size() const { return state_->mpi->size(); }
int NcclCommunicator::local_rank() const { return state_->mpi->local_rank(); }
Device NcclCommunicator::device() const { return state_->device; }

void NcclCommunicator::all_reduce(Tensor& tensor, ReduceOp op, const std::string& what) {
  check_nccl_tensor(tensor, state_->device, what);
  // Even in a world of one the call goes through NCCL: that is the path a
  // run of several takes, and it costs a few microseconds.
  if (tensor.numel() == 0) return;
  const ncclDataType_t type = tensor.dtype() == DType::Float32 ? ncclFloat32 : ncclFloat64;
  state_->all_reduce(tensor.raw_data(), static_cast<size_t>(tensor.numel()), type, op, what);
}

namespace {

// A reduction on the side stream. Dropped without wait() (an exception
// unwinding), it still orders pixgrad's stream after the reduction, so that
// the tensor's memory is not handed to another kernel while NCCL writes it.
class PendingNccl final : public PendingAllReduce {
 public:
  PendingNccl(NcclCommunicator::State& state, cudaEvent_t reduced, std::string what)
      : state_(state), reduced_(reduced), what_(std::move(what)) {}
  ~PendingNccl() override {
    if (reduced_ == nullptr) return;
    if (!waited_) (void)cudaStreamWaitEvent(pixgrad::cuda::current_stream(), reduced_, 0);
    (void)cudaEventDestroy(reduced_);
  }
  PendingNccl(const PendingNccl&) = delete;
  PendingNccl& operator=(const PendingNccl&) = delete;

  void wait() override {
    if (waited_) return;
    state_.finish(reduced_, what_);
    waited_ = true;
  }

 private:
  NcclCommunicator::State& state_;
  cudaEvent_t reduced_;
  std::string what_;
  bool waited_ = false;
};

}  // namespace

std::unique_ptr<PendingAllReduce> NcclCommunicator::start_all_reduce(Tensor& tensor, ReduceOp op,
                                                                     const std::string& what) {
  check_nccl_tensor(tensor, state_->device, what);
  if (tensor.numel() == 0) return Communicator::start_all_reduce(tensor, op, what);
  const ncclDataType_t type = tensor.dtype() == DType::Float32 ? ncclFloat32 : ncclFloat64;
  cudaEvent_t reduced = state_->start(tensor.raw_data(), static_cast<size_t>(tensor.numel()), type, op, what);
  return std::make_unique<PendingNccl>(*state_, reduced, what);
}

void NcclCommunicator::all_reduce(std::vector<double>& values, ReduceOp op, const std::string& what) {
  state_->mpi->all_reduce(values, op, what);
}

void NcclCommunicator::barrier(const std::string& what) { state_->mpi->barrier(what); }

void NcclCommunicator::abort(int exit_code) {
  state_->abort_communicator();
  state_->mpi->abort(exit_code);
}

std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<MpiCommunicator> bootstrap, Device device) {
  return std::make_shared<NcclCommunicator>(std::move(bootstrap), device);
}

#else  // without NCCL: constructing one is an error

namespace {

[[noreturn]] void not_built_in() {
  fail("distributed: pixgrad was built without NCCL, which needs the CUDA backend, MPI and NCCL when it is "
       "configured: use the MPI communicator, or install them and rebuild");
}

}  // namespace

bool built_with_nccl() { return false; }

struct NcclCommunicator::State {};

NcclCommunicator::NcclCommunicator(std::shared_ptr<MpiCommunicator>, Device) { not_built_in(); }
NcclCommunicator::~NcclCommunicator() = default;
int NcclCommunicator::rank() const { return 0; }
int NcclCommunicator::size() const { return 1; }
int NcclCommunicator::local_rank() const { return 0; }
Device NcclCommunicator::device() const { return Device::cpu(); }
void NcclCommunicator::all_reduce(Tensor&, ReduceOp, const std::string&) { not_built_in(); }
std::unique_ptr<PendingAllReduce> NcclCommunicator::start_all_reduce(Tensor&, ReduceOp, const std::string&) {
  not_built_in();
}
void NcclCommunicator::all_reduce(std::vector<double>&, ReduceOp, const std::string&) { not_built_in(); }
void NcclCommunicator::barrier(const std::string&) { not_built_in(); }
void NcclCommunicator::abort(int exit_code) { Communicator::abort(exit_code); }

std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<MpiCommunicator>, Device) { not_built_in(); }

#endif

}  // namespace pixgrad::distributed
