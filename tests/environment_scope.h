// Environment variables set for one check, and the process's own put back
// afterwards: the suite may itself run under mpirun, or with PIXGRAD_*
// variables set by its caller.
#pragma once

#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace pixgrad::testing {

// Saves and unsets every one of `names`, then sets `values` (a subset of
// them); the destructor unsets them again and restores the saved ones.
class EnvironmentScope {
 public:
  EnvironmentScope(std::vector<std::string> names, const std::map<std::string, std::string>& values)
      : names_(std::move(names)) {
    for (const std::string& name : names_) {
      if (const char* value = std::getenv(name.c_str())) saved_[name] = value;
      unsetenv(name.c_str());
    }
    for (const auto& [name, value] : values) setenv(name.c_str(), value.c_str(), 1);
  }
  ~EnvironmentScope() {
    for (const std::string& name : names_) unsetenv(name.c_str());
    for (const auto& [name, value] : saved_) setenv(name.c_str(), value.c_str(), 1);
  }
  EnvironmentScope(const EnvironmentScope&) = delete;
  EnvironmentScope& operator=(const EnvironmentScope&) = delete;

 private:
  std::vector<std::string> names_;
  std::map<std::string, std::string> saved_;
};

}  // namespace pixgrad::testing
