// What the NCCL communicator decides before NCCL is involved, in every
// build: the GPU each rank takes, ranks that would share one, the tensors
// it refuses, and the error of a build without NCCL. Its collectives need a
// GPU (tests/cuda/test_nccl_communicator.cpp).
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include <pixgrad/core/error.h>
#include <pixgrad/core/tensor.h>
#include <pixgrad/distributed/nccl_communicator.h>

using Catch::Matchers::Contains;
using pixgrad::Device;
using pixgrad::Error;
using pixgrad::Tensor;
using namespace pixgrad::distributed;

TEST_CASE("each rank takes the GPU of its local rank", "[nccl]") {
  CHECK(nccl_rank_device(Device::cuda(), 0, 1) == Device::cuda(0));
  // "cuda" means this rank's GPU, whichever local rank it is.
  CHECK(nccl_rank_device(Device::cuda(), 3, 8) == Device::cuda(3));
  CHECK(nccl_rank_device(Device::cuda(3), 3, 8) == Device::cuda(3));
}

TEST_CASE("ranks that see only GPUs of their own take them in turn", "[nccl]") {
  // srun --gpus-per-task=1: local rank 3 sees one GPU, its own.
  CHECK(nccl_rank_device(Device::cuda(), 3, 1) == Device::cuda(0));
  // --gpus-per-task=2 with 4 ranks on a machine: local ranks 2 and 3 take
  // the first and second of the two they see.
  CHECK(nccl_rank_device(Device::cuda(), 2, 2) == Device::cuda(0));
  CHECK(nccl_rank_device(Device::cuda(), 3, 2) == Device::cuda(1));
  CHECK(nccl_rank_device(Device::cuda(1), 3, 2) == Device::cuda(1));
}

TEST_CASE("a device no rank can take is refused with what to change", "[nccl]") {
  CHECK_THROWS_WITH(nccl_rank_device(Device::cpu(), 0, 1), Contains("NCCL runs on CUDA devices, not cpu"));
  CHECK_THROWS_WITH(nccl_rank_device(Device::cuda(), 0, 0), Contains("no usable CUDA device"));
  // Another rank's GPU: two ranks on one GPU would make NCCL fail.
  CHECK_THROWS_WITH(nccl_rank_device(Device::cuda(1), 2, 4),
                    Contains("runs on cuda:2") && Contains("not cuda:1") && Contains("CUDA_VISIBLE_DEVICES"));
  CHECK_THROWS_WITH(nccl_rank_device(Device::cuda(1), 2, 2), Contains("runs on cuda:0") && Contains("not cuda:1"));
  CHECK_THROWS_AS(nccl_rank_device(Device::cuda(), -1, 4), Error);
}

TEST_CASE("ranks on the same GPU are named, the first pair found", "[nccl]") {
  CHECK(describe_shared_gpus({}).empty());
  CHECK(describe_shared_gpus({7}).empty());
  CHECK(describe_shared_gpus({7, 8, 9, 10}).empty());
  // Four ranks on a machine of two GPUs: ranks 2 and 3 take GPUs 0 and 1 again.
  const std::string shared = describe_shared_gpus({11, 12, 11, 12});
  CHECK_THAT(shared, Contains("ranks 0 and 2 are on the same GPU") && Contains("one GPU per rank") &&
                         Contains("--gpus-per-task=1"));
  CHECK_THAT(describe_shared_gpus({5, 6, 7, 6}), Contains("ranks 1 and 3"));
}

TEST_CASE("the NCCL all-reduce refuses a CPU tensor, naming the collective", "[nccl]") {
  const Tensor cpu = Tensor::zeros({3});
  CHECK_THROWS_WITH(check_nccl_tensor(cpu, Device::cuda(0), "G's gradients"),
                    Contains("G's gradients") && Contains("takes CUDA tensors, not a cpu tensor"));
  CHECK_THROWS_WITH(check_nccl_tensor(Tensor(), Device::cuda(0), "D's gradients"),
                    Contains("D's gradients") && Contains("undefined"));
}

TEST_CASE("making a NCCL communicator without NCCL built in, or without MPI, says so", "[nccl]") {
  if (built_with_nccl()) {
    // Built in: the MPI communicator that sets NCCL up is required.
    CHECK_THROWS_WITH(make_nccl_communicator(nullptr, Device::cuda()), Contains("none was given"));
  } else {
    CHECK_THROWS_WITH(make_nccl_communicator(nullptr, Device::cuda()), Contains("built without NCCL"));
  }
}
