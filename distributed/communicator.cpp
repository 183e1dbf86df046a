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

std::shared_ptr<Communicator> single_process() { return std::make_shared<SingleProcess>(); }

const char* program_name() {
#ifdef __GLIBC__
  if (program_invocation_short_name != nullptr && *program_invocation_short_name != '\0')
    return program_invocation_short_name;
#endif
  return "pixgrad";
}

}  // namespace pixgrad::distributed
