// The NCCL communicator where NCCL is built in: a world of one rank (this
// process, MPI started without mpirun) that all-reduces CUDA tensors: the
// sum and the maximum over one rank give the input back, bit for bit,
// blocking or started on NCCL's own stream. The checks it makes before NCCL
// is involved run in the CPU suite (tests/test_nccl_checks.cpp).
#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/distributed/mpi_communicator.h>
#include <pixgrad/distributed/nccl_communicator.h>

#include "cuda_testing.h"

using Catch::Matchers::Contains;
using pixgrad::Device;
using pixgrad::Error;
using pixgrad::Tensor;
using pixgrad::mul;
using namespace pixgrad::distributed;

#if PIXGRAD_WITH_NCCL

namespace {

// This process as a world of one: MPI can be started only once in a
// process, so every test shares it; it is finalised at exit. A short
// timeout: a collective that hangs here stops the suite in a minute, not ten.
std::shared_ptr<MpiCommunicator> world_of_one() {
  static const std::shared_ptr<MpiCommunicator> world = [] {
    WorldOptions options;
    options.timeout_seconds = 60;
    return std::make_shared<MpiCommunicator>(options);
  }();
  return world;
}

}  // namespace

TEST_CASE("the NCCL communicator refuses a CPU device before it sets NCCL up", "[nccl]") {
  std::string reason;
  if (pixgrad::cuda_device_count(&reason) == 0) {
    CHECK_THROWS_WITH(NcclCommunicator(world_of_one(), Device::cuda()), Contains("NCCL needs a GPU"));
  } else {
    CHECK_THROWS_WITH(NcclCommunicator(world_of_one(), Device::cpu()), Contains("not cpu"));
  }
}

TEST_CASE("a NCCL world of one gives every tensor back unchanged", "[nccl][nccl_gpu]") {
  using pixgrad::cuda_testing::count_unequal;
  using pixgrad::cuda_testing::kGpu;
  using pixgrad::cuda_testing::random_tensor;
  const std::shared_ptr<Communicator> nccl = make_nccl_communicator(world_of_one(), Device::cuda());
  REQUIRE(nccl->backend() == "nccl");
  REQUIRE(nccl->size() == 1);
  CHECK(nccl->rank() == 0);
  CHECK(dynamic_cast<NcclCommunicator&>(*nccl).device() == kGpu);

  // One communicator for every check: setting NCCL up is the slow part.
  for (const int64_t length : {int64_t(1), int64_t(7), int64_t(1000003)}) {
    for (const ReduceOp op : {ReduceOp::Sum, ReduceOp::Max}) {
      INFO("float32, " << length << " elements, " << (op == ReduceOp::Sum ? "sum" : "max"));
      const Tensor host = random_tensor({length}, 17 + static_cast<uint64_t>(length));
      Tensor gpu = host.to(kGpu);
      nccl->all_reduce(gpu, op, "a test tensor");
      CHECK(gpu.is_cuda());
      CHECK(count_unequal(gpu, host) == 0);
    }
  }
  {
    INFO("reductions started on NCCL's own stream, kernels queued meanwhile, a blocking one between");
    std::vector<Tensor> hosts, gpus;
    std::vector<std::unique_ptr<PendingAllReduce>> started;
    for (const int64_t length : {int64_t(3), int64_t(4099), int64_t(1 << 20)}) {
      hosts.push_back(random_tensor({length}, 29 + static_cast<uint64_t>(length)));
      gpus.push_back(hosts.back().to(kGpu));
      started.push_back(nccl->start_all_reduce(gpus.back(), ReduceOp::Sum, "a started tensor"));
    }
    const Tensor other_host = random_tensor({4096}, 31);
    Tensor other = other_host.to(kGpu);
    const Tensor doubled = mul(other, 2.0);  // pixgrad's stream, while the reductions may still run
    nccl->all_reduce(other, ReduceOp::Sum, "a blocking tensor");
    for (auto& pending : started) pending->wait();
    for (size_t i = 0; i < gpus.size(); ++i) CHECK(count_unequal(gpus[i], hosts[i]) == 0);
    CHECK(count_unequal(other, other_host) == 0);
    CHECK(count_unequal(doubled, mul(other_host, 2.0)) == 0);
    Tensor dropped = hosts[0].to(kGpu);
    { const auto never_waited = nccl->start_all_reduce(dropped, ReduceOp::Max, "a dropped tensor"); }
    CHECK(count_unequal(dropped, hosts[0]) == 0);  // the copy back waits for it on pixgrad's stream
  }
  {
    Tensor cpu = Tensor::ones({5});
    CHECK_THROWS_WITH(nccl->all_reduce(cpu, ReduceOp::Sum, "G's gradients"),
                      Contains("G's gradients") && Contains("CUDA tensors"));
  }
  {
    INFO("host numbers and barriers go through MPI");
    std::vector<double> values = {1.5, -2};
    nccl->all_reduce(values, ReduceOp::Sum, "the losses");
    CHECK(values == std::vector<double>{1.5, -2});
    nccl->barrier("a barrier");
  }
}

#endif
