// A fresh folder under the system temporary folder for one test, removed
// with everything in it afterwards (read-only parts included).
#pragma once

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace pixgrad::testing {

class ScratchFolder {
 public:
  // `name` goes into the folder's name, to tell whose a leftover one is.
  explicit ScratchFolder(const std::string& name) {
    std::string pattern = (std::filesystem::temp_directory_path() / ("pixgrad-" + name + "-XXXXXX")).string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~ScratchFolder() {
    std::error_code ignored;
    std::filesystem::permissions(path, std::filesystem::perms::owner_all, ignored);
    std::filesystem::remove_all(path, ignored);
  }
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;

  // The path of `relative` inside it.
  std::string at(const std::string& relative) const { return (path / relative).string(); }

  std::filesystem::path path;
};

}  // namespace pixgrad::testing
