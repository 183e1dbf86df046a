// Where the tests find files that live outside the test binaries: the
// PyTorch fixtures (tests/fixtures) and the real datasets (../shared/data
// beside the checkout). Nothing is compiled in: a binary carried to another
// machine finds them from where it runs.
//
//   fixtures  $PIXGRAD_FIXTURES, else tests/fixtures under the current directory
//   data      $PIXGRAD_DATA, else ../shared/data from the current directory
//
// CTest runs every test from the repository root. When the data are missing
// a test FAILS, naming the path, unless PIXGRAD_ALLOW_MISSING_DATA=1 says this
// machine has no data on purpose (then it only warns): a data test never
// passes silently. Missing fixtures always fail.
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace pixgrad::testing {

inline std::string configured_or(const char* variable, const char* fallback) {
  const char* configured = std::getenv(variable);
  return configured && *configured ? configured : fallback;
}

// Absolute, so that a failure message says where the test looked.
inline std::string absolute_path(const std::string& path) {
  std::error_code error;
  const std::filesystem::path absolute = std::filesystem::absolute(path, error);
  return error ? path : absolute.lexically_normal().string();
}

inline std::string fixtures_dir() {
  const std::string dir = absolute_path(configured_or("PIXGRAD_FIXTURES", "tests/fixtures"));
  if (!std::filesystem::is_directory(dir))
    FAIL("no fixtures at " << dir << ": run from the repository root or set PIXGRAD_FIXTURES to tests/fixtures");
  return dir;
}

inline std::string shared_data_root() { return absolute_path(configured_or("PIXGRAD_DATA", "../shared/data")); }

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

// Everything in the file at `path` ("" if it cannot be read).
inline std::string bytes_of(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace pixgrad::testing
