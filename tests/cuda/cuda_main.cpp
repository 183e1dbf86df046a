// Runs the CUDA tests when a GPU is usable; otherwise says why and exits with
// 77, which CTest reports as "skipped" (never as passed). --help and the
// listing options work without a GPU and exit 0, so that a script can check
// that the binary starts on a machine before it relies on it.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include <pixgrad/core/cuda_info.h>

int main(int argc, char** argv) {
  Catch::Session session;
  const int parse_status = session.applyCommandLine(argc, argv);
  if (parse_status != 0) return parse_status;
  const Catch::ConfigData& config = session.configData();
  const bool only_describes = config.showHelp || config.listTests || config.listTags || config.listTestNamesOnly ||
                              config.listReporters;
  if (only_describes) {
    session.run();
    return 0;  // Catch returns the number of tests listed
  }
  std::string reason;
  if (pixgrad::cuda_device_count(&reason) == 0) {
    std::printf("SKIPPED: CUDA tests need a GPU: %s\n", reason.c_str());
    return 77;
  }
  return session.run();
}
