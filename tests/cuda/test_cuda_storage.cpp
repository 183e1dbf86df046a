// Device tensors: storage round trips and random draws that match the host.
#include <catch2/catch.hpp>

#include <pixgrad/core/tensor.h>

using pixgrad::Device;
using pixgrad::Generator;
using pixgrad::Tensor;

TEST_CASE("host -> device -> host copies are exact", "[cuda]") {
  Generator generator(7);
  const Tensor host = Tensor::uniform({3, 5, 7}, -2, 2, generator);
  const Tensor device = host.to(Device::cuda(0));
  CHECK(device.is_cuda());
  CHECK(device.to(Device::cpu()).to_vector() == host.to_vector());
  CHECK(device.clone().to(Device::cpu()).to_vector() == host.to_vector());
}

TEST_CASE("a uniform draw on the device equals the host draw with the same seed and offset", "[cuda]") {
  Generator on_host(11), on_device(11);
  const Tensor a = Tensor::uniform({1000}, 0, 1, on_host);
  const Tensor b = Tensor::uniform({1000}, 0, 1, on_device, Device::cuda(0));
  CHECK(a.to_vector() == b.to_vector());
  CHECK(on_host.offset() == on_device.offset());
}
