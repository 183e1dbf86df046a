// Runs the CUDA tests when a GPU is usable; otherwise says why and exits with
// 77, which CTest reports as "skipped" (never as passed).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "core/cuda_info.h"

int main(int argc, char** argv) {
  std::string reason;
  if (pixgrad::cuda_device_count(&reason) == 0) {
    std::printf("SKIPPED: CUDA tests need a GPU: %s\n", reason.c_str());
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
