#include <pixgrad/distributed/mpi_communicator.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include <functional>

#include <pixgrad/core/error.h>

#if PIXGRAD_WITH_MPI
#include <mpi.h>
#endif

namespace pixgrad::distributed {

namespace {

int environment_number(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return -1;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  return *end == '\0' && value >= 0 && value < (1 << 20) ? static_cast<int>(value) : -1;
}

// What each launcher sets, in the order they are asked: Open MPI's mpirun,
// then MPICH's (and Slurm's PMI), then srun itself.
constexpr const char* kSizeVariables[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"};
constexpr const char* kRankVariables[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"};

// The first of `names` set to a number of at least `least`, or -1.
template <size_t N>
int launcher_number(const char* const (&names)[N], int least) {
  for (const char* name : names)
    if (const int value = environment_number(name); value >= least) return value;
  return -1;
}

}  // namespace

int launched_processes() { return std::max(launcher_number(kSizeVariables, 1), 1); }

bool started_by_launcher() { return launcher_number(kSizeVariables, 1) > 0; }

int launched_rank() { return std::max(launcher_number(kRankVariables, 0), 0); }

int threads_per_local_rank(int usable_cores, int machine_cores, int local_ranks) {
  const int share = std::max(1, machine_cores / std::max(1, local_ranks));
  return std::max(1, std::min(usable_cores, share));
}

int cpu_list_size(const std::string& list) {
  constexpr long kMostCpus = 1 << 20;
  long count = 0;
  std::string text = list;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.empty()) return 0;
  size_t at = 0;
  while (at <= text.size()) {
    const size_t end = std::min(text.find(',', at), text.size());
    const std::string range = text.substr(at, end - at);
    const size_t dash = range.find('-');
    const auto number = [](const std::string& digits) -> long {
      if (digits.empty() || digits.size() > 7 || digits.find_first_not_of("0123456789") != std::string::npos)
        return -1;
      return std::stol(digits);
    };
    const long first = number(range.substr(0, dash));
    const long last = dash == std::string::npos ? first : number(range.substr(dash + 1));
    if (first < 0 || last < first) return 0;
    count += last - first + 1;
    if (count > kMostCpus) return 0;
    at = end + 1;
  }
  return static_cast<int>(count);
}

int cpuset_cpu_count() {
  std::ifstream cgroups("/proc/self/cgroup");
  std::string line, unified;
  // Lines "id:controllers:path"; cgroup v1's cpuset first, else v2's.
  while (std::getline(cgroups, line)) {
    const size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = "," + line.substr(first + 1, second - first - 1) + ",";
    const std::string path = line.substr(second + 1);
    if (controllers.find(",cpuset,") != std::string::npos) {
      std::ifstream cpus("/sys/fs/cgroup/cpuset" + path + "/cpuset.effective_cpus");
      std::string list;
      if (std::getline(cpus, list)) return cpu_list_size(list);
    }
    if (line.compare(0, first + 1, "0:") == 0 && controllers == ",,") unified = path;
  }
  std::ifstream cpus("/sys/fs/cgroup" + unified + "/cpuset.cpus.effective");
  std::string list;
  return std::getline(cpus, list) ? cpu_list_size(list) : 0;
}

std::shared_ptr<Communicator> join_world(const WorldOptions& options) {
  PIXGRAD_CHECK(options.timeout_seconds > 0, "distributed: the collective timeout must be positive, got ",
                options.timeout_seconds, " s");
  const int processes = launched_processes();
  if (processes == 1) return single_process();
#if PIXGRAD_WITH_MPI
  auto world = std::make_shared<MpiCommunicator>(options);
  // Tasks that srun started without a link to MPI each find a world of
  // their own: they would train alone, side by side, unaware of each other.
  if (world->size() != processes)
    fail("distributed: the launcher started ", processes, " processes, but MPI joined ", world->size(),
         " of them in this one's world: under Slurm, give srun the MPI plug-in Open MPI was built for "
         "(srun --mpi=pmix, or --mpi=pmi2; srun --mpi=list shows them), or start the ranks with mpirun");
  return world;
#else
  fail("distributed: this process is one of ", processes, " started by mpirun or srun, but pixgrad was built "
       "without MPI: install Open MPI (Debian: libopenmpi-dev) and rebuild, or run one process");
#endif
}

#if PIXGRAD_WITH_MPI

namespace {

constexpr int kArrivalTag = 7301;
// Rank 0's question, on a timeout, to the ranks that are waiting like it,
// and their answer: a rank that does not answer is the one stuck elsewhere.
constexpr int kPingTag = 7302;
constexpr int kAnswerTag = 7303;
// The exit status of every rank when a collective timed out.
constexpr int kTimeoutExitCode = 4;

void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  fail("distributed: ", call, " failed: ", std::string(text, static_cast<size_t>(length)));
}

MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::Max ? MPI_MAX : MPI_SUM; }

}  // namespace

struct MpiCommunicator::State {
  double timeout_seconds = 600;
  std::function<void()> before_stopping;  // see on_timeout
  int rank = 0, size = 1, local_rank = 0, local_size = 1;
  bool initialised_here = false;
  long long collective = 0;  // the number of the collective under way on this rank
  // Rank 0: the last collective each rank reported reaching, and the
  // receives that bring the next reports.
  std::vector<long long> reached, report;
  std::vector<MPI_Request> reports;
  // The others: the report of the collective reached, sent to rank 0, and
  // the receive of rank 0's ping.
  long long sent_report = 0;
  MPI_Request sending = MPI_REQUEST_NULL;
  long long ping = 0;
  MPI_Request pinged = MPI_REQUEST_NULL;

  void post_ping_receive() {
    check_mpi(MPI_Irecv(&ping, 1, MPI_LONG_LONG, 0, kPingTag, MPI_COMM_WORLD, &pinged), "MPI_Irecv");
  }

  // A rank other than 0, while it waits: answers rank 0's ping.
  void answer_ping() {
    int arrived = 0;
    check_mpi(MPI_Test(&pinged, &arrived, MPI_STATUS_IGNORE), "MPI_Test");
    if (!arrived) return;
    check_mpi(MPI_Send(&collective, 1, MPI_LONG_LONG, 0, kAnswerTag, MPI_COMM_WORLD), "MPI_Send");
    post_ping_receive();
  }

  // Rank 0, on a timeout: which ranks answer a ping within a few seconds
  // (those waiting in a collective answer at once), by rank.
  std::vector<bool> answering_ranks() {
    const int others = size - 1;
    std::vector<long long> question(static_cast<size_t>(others), collective), answer(static_cast<size_t>(others));
    std::vector<MPI_Request> asked(static_cast<size_t>(others)), answered(static_cast<size_t>(others));
    for (int other = 1; other < size; ++other) {
      MPI_Isend(&question[other - 1], 1, MPI_LONG_LONG, other, kPingTag, MPI_COMM_WORLD, &asked[other - 1]);
      MPI_Irecv(&answer[other - 1], 1, MPI_LONG_LONG, other, kAnswerTag, MPI_COMM_WORLD, &answered[other - 1]);
    }
    const double patience = std::min(10.0, std::max(1.0, timeout_seconds / 4));
    const auto start = std::chrono::steady_clock::now();
    std::vector<bool> heard(static_cast<size_t>(others), false);
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < patience) {
      bool all = true;
      for (int other = 1; other < size; ++other) {
        int done = 0;
        if (!heard[other - 1]) MPI_Test(&answered[other - 1], &done, MPI_STATUS_IGNORE);
        if (done) heard[other - 1] = true;
        all = all && heard[other - 1];
      }
      if (all) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    heard.insert(heard.begin(), true);  // rank 0 itself
    return heard;  // the run is stopped next: the unanswered requests are left as they are
  }

  // Rank 0, on a timeout: what each rank that holds the run up is doing.
  std::string describe_late_ranks() {
    note_arrivals();
    const std::vector<bool> answers = answering_ranks();
    std::string text;
    for (int other = 1; other < size; ++other) {
      const bool arrived = reached[other] >= collective;
      if (arrived && answers[other]) continue;
      text += (text.empty() ? "" : "; ") + std::string("rank ") + std::to_string(other) +
              (!arrived && !answers[other] ? " never reached it and does not answer (hung, or died)"
               : arrived                   ? " reached it but does not answer (hung inside it, or died)"
                                           : " never reached it but answers (it waits in another collective: the "
                                             "ranks' collectives differ)");
    }
    return text.empty() ? "every rank reached it and answers, but it did not complete" : text;
  }

  void post_report_receive(int from) {
    check_mpi(MPI_Irecv(&report[from], 1, MPI_LONG_LONG, from, kArrivalTag, MPI_COMM_WORLD, &reports[from]),
              "MPI_Irecv");
  }

  // Rank 0 takes in the reports that have come; the others report this collective.
  void note_arrivals() {
    if (rank != 0) return;
    for (int from = 1; from < size; ++from) {
      int arrived = 1;
      while (arrived) {
        check_mpi(MPI_Test(&reports[from], &arrived, MPI_STATUS_IGNORE), "MPI_Test");
        if (arrived) {
          reached[from] = report[from];
          post_report_receive(from);
        }
      }
    }
  }

  void begin(const std::string& what) {
    (void)what;
    ++collective;
    if (rank == 0) {
      note_arrivals();
      return;
    }
    // The previous report has been received by now: rank 0 completed that collective.
    check_mpi(MPI_Wait(&sending, MPI_STATUS_IGNORE), "MPI_Wait");
    sent_report = collective;
    check_mpi(MPI_Isend(&sent_report, 1, MPI_LONG_LONG, 0, kArrivalTag, MPI_COMM_WORLD, &sending), "MPI_Isend");
  }

  // While this rank waits in a collective: rank 0 takes in the others'
  // reports, the others answer rank 0's ping.
  void tend() {
    if (rank == 0)
      note_arrivals();
    else
      answer_ping();
  }

  // Tests `request` until it completes; past the timeout, stops the run.
  // Spins briefly, then sleeps between tests, so that a rank waiting for a
  // slow one leaves the CPU to it.
  void wait(MPI_Request& request, const std::string& what) {
    const auto start = std::chrono::steady_clock::now();
    // The others give rank 0 a head start to name the missing ranks.
    const double limit = rank == 0 ? timeout_seconds : timeout_seconds * 1.05 + 5;
    for (int tests = 0;; ++tests) {
      int done = 0;
      check_mpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (done) return;
      tend();
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (waited > limit) timed_out(what, waited);
      if (tests > 2000) std::this_thread::sleep_for(std::chrono::microseconds(tests > 20000 ? 1000 : 50));
    }
  }

  // Two growable byte buffers: the padded input and this rank's reduced slice.
  std::vector<unsigned char> scratch_bytes[2];
  template <typename T>
  T* scratch(int which, size_t count) {
    std::vector<unsigned char>& bytes = scratch_bytes[which];
    if (bytes.size() < count * sizeof(T)) bytes.resize(count * sizeof(T));
    return reinterpret_cast<T*>(bytes.data());
  }

  // Reduce-scatter, then all-gather (see the header): `count` elements at
  // `data`, padded in a scratch buffer when the world does not divide them.
  template <typename T>
  void all_reduce_identically(T* data, size_t count, MPI_Datatype type, ReduceOp op, const std::string& what) {
    const size_t ranks = static_cast<size_t>(size);
    const size_t slice = (count + ranks - 1) / ranks;
    // Scratch kept between calls: a fresh one each time would fault its pages in again.
    T* buffer = data;
    if (slice * ranks != count) {
      buffer = scratch<T>(0, slice * ranks);
      std::fill(std::copy(data, data + count, buffer), buffer + slice * ranks, T(0));
    }
    T* reduced = scratch<T>(1, slice);
    // MPI counts are ints: a slice beyond that would need several calls; the
    // caller's buckets are far smaller.
    PIXGRAD_CHECK(slice < (size_t(1) << 30), "distributed: ", what, ": ", count,
                  " elements is too many for one collective");
    const int n = static_cast<int>(slice);
    begin(what);
    MPI_Request request;
    check_mpi(MPI_Ireduce_scatter_block(buffer, reduced, n, type, mpi_op(op), MPI_COMM_WORLD, &request),
              "MPI_Ireduce_scatter_block");
    wait(request, what);
    std::copy(reduced, reduced + slice, buffer + static_cast<size_t>(rank) * slice);
    check_mpi(MPI_Iallgather(MPI_IN_PLACE, n, type, buffer, n, type, MPI_COMM_WORLD, &request), "MPI_Iallgather");
    wait(request, what);
    if (buffer != data) std::copy(buffer, buffer + count, data);
  }

  [[noreturn]] void timed_out(const std::string& what, double waited, const std::function<void()>& last = {}) {
    std::string who;
    if (rank == 0) {
      who = describe_late_ranks();
    } else {
      who = "rank 0 did not end it (rank 0 names the ranks that never reached it; if it says nothing, rank 0 "
            "itself died or hung)";
    }
    std::fprintf(stderr, "\n%s: rank %d: %s (collective %lld) waited %.0f s for the other ranks: %s; "
                 "stopping every rank (checkpoints already written are kept)\n",
                 program_name(), rank, what.c_str(), collective, waited, who.c_str());
    const auto run = [&](const std::function<void()>& step) {
      if (!step) return;
      try {
        step();
      } catch (const std::exception& error) {
        std::fprintf(stderr, "%s: rank %d: before stopping: %s\n", program_name(), rank, error.what());
      }
    };
    run(before_stopping);
    run(last);
    std::fflush(nullptr);
    MPI_Abort(MPI_COMM_WORLD, kTimeoutExitCode);
    std::_Exit(kTimeoutExitCode);
  }
};

MpiCommunicator::MpiCommunicator(const WorldOptions& options) : state_(std::make_unique<State>()) {
  state_->timeout_seconds = options.timeout_seconds;
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    // Only the thread that trains calls MPI (the loader's threads never do).
    check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    state_->initialised_here = true;
  }
  // Errors come back as codes, turned into pixgrad::Error, not a silent abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &state_->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &state_->size);
  MPI_Comm local;
  check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, state_->rank, MPI_INFO_NULL, &local),
            "MPI_Comm_split_type");
  MPI_Comm_rank(local, &state_->local_rank);
  MPI_Comm_size(local, &state_->local_size);
  MPI_Comm_free(&local);
  if (state_->rank == 0) {
    state_->reached.assign(static_cast<size_t>(state_->size), 0);
    state_->report.assign(static_cast<size_t>(state_->size), 0);
    state_->reports.assign(static_cast<size_t>(state_->size), MPI_REQUEST_NULL);
    for (int from = 1; from < state_->size; ++from) state_->post_report_receive(from);
  } else {
    state_->post_ping_receive();
  }
}

MpiCommunicator::~MpiCommunicator() {
  // Every rank reaches this point together (the last collective of a run is
  // a barrier); the pending report receives are cancelled first.
  state_->reports.push_back(state_->pinged);
  for (MPI_Request& request : state_->reports) {
    if (request == MPI_REQUEST_NULL) continue;
    MPI_Cancel(&request);
    MPI_Wait(&request, MPI_STATUS_IGNORE);
  }
  MPI_Wait(&state_->sending, MPI_STATUS_IGNORE);
  if (state_->initialised_here) MPI_Finalize();
}

int MpiCommunicator::rank() const { return state_->rank; }
int MpiCommunicator::size() const { return state_->size; }
int MpiCommunicator::local_rank() const { return state_->local_rank; }
int MpiCommunicator::local_size() const { return state_->local_size; }
double MpiCommunicator::timeout_seconds() const { return state_->timeout_seconds; }
void MpiCommunicator::on_timeout(std::function<void()> before_stopping) {
  state_->before_stopping = std::move(before_stopping);
}
void MpiCommunicator::set_timeout_seconds(double seconds) {
  PIXGRAD_CHECK(seconds > 0, "distributed: the collective timeout must be positive, got ", seconds, " s");
  state_->timeout_seconds = seconds;
}

void MpiCommunicator::all_reduce(Tensor& tensor, ReduceOp op, const std::string& what) {
  PIXGRAD_CHECK(tensor.dtype() == DType::Float32 || tensor.dtype() == DType::Float64, "distributed: ", what,
                ": all-reduce takes float32 or float64 tensors, not ", to_string(tensor.dtype()));
  if (size() == 1 || tensor.numel() == 0) return;
  Tensor host = tensor.is_cpu() ? tensor : tensor.to(Device::cpu());
  const size_t count = static_cast<size_t>(host.numel());
  if (host.dtype() == DType::Float32)
    state_->all_reduce_identically(host.data<float>(), count, MPI_FLOAT, op, what);
  else
    state_->all_reduce_identically(host.data<double>(), count, MPI_DOUBLE, op, what);
  if (!tensor.is_cpu()) tensor.copy_(host);
}

void MpiCommunicator::all_reduce(std::vector<double>& values, ReduceOp op, const std::string& what) {
  if (size() == 1 || values.empty()) return;
  state_->all_reduce_identically(values.data(), values.size(), MPI_DOUBLE, op, what);
}

void MpiCommunicator::barrier(const std::string& what) {
  if (size() == 1) return;
  state_->begin(what);
  MPI_Request request;
  check_mpi(MPI_Ibarrier(MPI_COMM_WORLD, &request), "MPI_Ibarrier");
  state_->wait(request, what);
}

void MpiCommunicator::broadcast(void* data, size_t bytes, int root, const std::string& what) {
  PIXGRAD_CHECK(bytes < (size_t(1) << 30), "distributed: ", what, ": ", bytes,
                " bytes is too many for one broadcast");
  if (size() == 1) return;
  state_->begin(what);
  MPI_Request request;
  check_mpi(MPI_Ibcast(data, static_cast<int>(bytes), MPI_BYTE, root, MPI_COMM_WORLD, &request), "MPI_Ibcast");
  state_->wait(request, what);
}

void MpiCommunicator::reached(const std::string& what) {
  if (size() > 1) state_->begin(what);
}

void MpiCommunicator::waiting() {
  if (size() > 1) state_->tend();
}

void MpiCommunicator::timed_out(const std::string& what, double waited, const std::function<void()>& last) {
  state_->timed_out(what, waited, last);
}

void MpiCommunicator::abort(int exit_code) {
  std::fflush(nullptr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

#else  // without MPI: join_world never makes one

MpiCommunicator::MpiCommunicator(const WorldOptions&) {
  fail("distributed: pixgrad was built without MPI (install Open MPI, Debian: libopenmpi-dev, and rebuild)");
}
MpiCommunicator::~MpiCommunicator() = default;
int MpiCommunicator::rank() const { return 0; }
int MpiCommunicator::size() const { return 1; }
int MpiCommunicator::local_rank() const { return 0; }
int MpiCommunicator::local_size() const { return 1; }
double MpiCommunicator::timeout_seconds() const { return 0; }
void MpiCommunicator::set_timeout_seconds(double) {}
void MpiCommunicator::on_timeout(std::function<void()>) {}
void MpiCommunicator::all_reduce(Tensor&, ReduceOp, const std::string&) {}
void MpiCommunicator::all_reduce(std::vector<double>&, ReduceOp, const std::string&) {}
void MpiCommunicator::barrier(const std::string&) {}
void MpiCommunicator::broadcast(void*, size_t, int, const std::string&) {}
void MpiCommunicator::reached(const std::string&) {}
void MpiCommunicator::waiting() {}
void MpiCommunicator::timed_out(const std::string&, double, const std::function<void()>&) { Communicator::abort(1); }
void MpiCommunicator::abort(int exit_code) { Communicator::abort(exit_code); }

#endif

}  // namespace pixgrad::distributed
