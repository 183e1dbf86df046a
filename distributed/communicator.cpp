#include <pixgrad/distributed/communicator.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace pixgrad::distributed {

void Communicator::abort(int exit_code) {
  std::fflush(nullptr);
  std::_Exit(exit_code);
}

namespace {

// What a backend that reduces before returning hands back.
class Completed final : public PendingAllReduce {
 public:
  void wait() override {}
};

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string backend() const override { return "single"; }
  void all_reduce(Tensor&, ReduceOp, const std::string&) override {}
  void all_reduce(std::vector<double>&, ReduceOp, const std::string&) override {}
  void barrier(const std::string&) override {}
};

}  // namespace

std::unique_ptr<PendingAllReduce> Communicator::start_all_reduce(Tensor& tensor, ReduceOp op, const std::string& what) {
  all_reduce(tensor, op, what);
  return std::make_unique<Completed>();
}

std::shared_ptr<Communicator> single_process() { return std::make_shared<SingleProcess>(); }

const char* program_name() {
#ifdef __GLIBC__
  if (program_invocation_short_name != nullptr && *program_invocation_short_name != '\0')
    return program_invocation_short_name;
#endif
  return "pixgrad";
}

}  // namespace pixgrad::distributed
