// Where the tests find the real datasets (../shared/data beside the
// checkout), and what happens when they are missing: the test FAILS, naming
// the path, unless PIXGRAD_ALLOW_MISSING_DATA=1 says this machine has no
// data on purpose — then it only warns. A data test never passes silently.
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

namespace pixgrad::testing {

inline std::string shared_data_root() {
  const char* configured = std::getenv("PIXGRAD_DATA");
  return configured && *configured ? configured : PIXGRAD_SHARED_DATA;
}

inline bool have_shared_data(const std::string& path) {
  if (std::filesystem::exists(path)) return true;
  const char* allow = std::getenv("PIXGRAD_ALLOW_MISSING_DATA");
  if (allow && std::strcmp(allow, "1") == 0) {
    WARN("no data at " << path << " (PIXGRAD_ALLOW_MISSING_DATA=1): not checked");
    return false;
  }
  FAIL("no data at " << path << ": set PIXGRAD_DATA to the folder holding facades/ and cmp_facade_base/ "
                                "(tools/download_dataset.sh fetches them), or PIXGRAD_ALLOW_MISSING_DATA=1");
  return false;
}

}  // namespace pixgrad::testing
