// Device selection: "auto" and default_device().
#include <catch2/catch.hpp>

#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/device.h>
#include <pixgrad/core/error.h>

using namespace pixgrad;
using Catch::Matchers::Contains;

TEST_CASE("the device auto picks the first GPU when one is usable, else the CPU", "[device]") {
  CHECK(cuda_is_available() == (cuda_device_count() > 0));
  CHECK(default_device() == (cuda_is_available() ? Device::cuda(0) : Device::cpu()));
  CHECK(Device::parse("auto") == default_device());
  CHECK(Device::parse("cuda:2") == Device::cuda(2));
  CHECK_THROWS_WITH(Device::parse("automatic"), Contains("'automatic'") && Contains("auto, cpu"));
}
