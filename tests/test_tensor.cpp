// Tensor creation, views, copies, and the errors misuse gets.
#include <catch2/catch.hpp>

#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/core/tensor.h>
#include "gradcheck.h"

using namespace pixgrad;
using Catch::Matchers::Contains;

TEST_CASE("creation functions fill shape and values", "[tensor]") {
  const Tensor z = Tensor::zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.numel() == 6);
  CHECK(z.dtype() == DType::Float32);
  CHECK(z.to_vector() == std::vector<float>(6, 0.0f));
  CHECK(Tensor::ones({4}).to_vector() == std::vector<float>(4, 1.0f));
  CHECK(Tensor::full({2, 2}, 2.5, Device::cpu(), DType::Float64).to_double_vector() == std::vector<double>(4, 2.5));
  CHECK(Tensor::full({}, 3).item() == 3);
  CHECK(Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}).size(-1) == 3);
}

TEST_CASE("batch_slice views share storage with the batch", "[tensor]") {
  Tensor batch = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}, {4, 2});
  Tensor middle = batch.batch_slice(1, 2);
  CHECK(middle.shape() == Shape{2, 2});
  CHECK(middle.to_vector() == std::vector<float>{2, 3, 4, 5});
  fill_(middle, -1);
  CHECK(batch.to_vector() == std::vector<float>{0, 1, -1, -1, -1, -1, 6, 7});
  CHECK_THROWS_WITH(batch.batch_slice(3, 2), Contains("batch_slice") && Contains("[4, 2]"));
}

TEST_CASE("batch_slice and reshape pass gradients back", "[tensor][autograd]") {
  Tensor x = testing::random_tensor({3, 2, 2}, 1).set_requires_grad();
  testing::check_gradients([](const std::vector<Tensor>& in) { return in[0].batch_slice(1, 2).reshape({8}); }, {x});
}

TEST_CASE("clone copies, to(dtype) converts", "[tensor]") {
  Tensor a = Tensor::from_vector(std::vector<float>{1.5f, -2.25f}, {2});
  Tensor b = a.clone();
  fill_(b, 0);
  CHECK(a.to_vector() == std::vector<float>{1.5f, -2.25f});
  CHECK(a.to(DType::Float64).to_double_vector() == std::vector<double>{1.5, -2.25});
  CHECK(a.to(DType::Float64).to(DType::Float32).to_vector() == a.to_vector());
}

TEST_CASE("summary names shape, dtype, device and range", "[tensor]") {
  Tensor t = Tensor::from_vector(std::vector<float>{-1, 0, 4}, {1, 3});
  t.set_requires_grad();
  const std::string text = t.summary();
  CHECK_THAT(text, Contains("[1, 3]") && Contains("float32") && Contains("cpu") && Contains("requires_grad") &&
                       Contains("min -1") && Contains("max 4") && Contains("mean 1"));
  CHECK(Tensor().summary() == "Tensor(undefined)");
}

TEST_CASE("misuse raises one-line errors", "[tensor][errors]") {
  CHECK_THROWS_WITH(Tensor().shape(), Contains("undefined"));
  CHECK_THROWS_WITH(Tensor::zeros({2, 2}).item(), Contains("item") && Contains("[2, 2]"));
  CHECK_THROWS_WITH(Tensor::zeros({-1}), Contains("negative"));
  CHECK_THROWS_WITH(Tensor::from_vector(std::vector<float>{1, 2}, {3}), Contains("[3]"));
  CHECK_THROWS_WITH(Tensor::zeros({2}).data<double>(), Contains("float32"));
  CHECK_THROWS_WITH(Device::parse("gpu"), Contains("'gpu'"));
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
  CHECK(Device::parse("cpu").is_cpu());
}

TEST_CASE("asking for CUDA without a usable GPU is a clear error", "[tensor][errors]") {
  std::string reason;
  if (cuda_device_count(&reason) > 0) return;  // this machine has a GPU: nothing to check here
  CHECK_FALSE(reason.empty());
  CHECK_THROWS_WITH(Tensor::zeros({2}, Device::cuda(0)), Contains("cuda:0"));
}
