// Writing a benchmark's JSON results: the whole document each time, to a
// temporary file renamed into place, so that a run stopped at any moment
// (a time limit, Ctrl-C) leaves the results measured so far, never a
// half-written file.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace pixgrad::apps {

inline void write_json_file(const std::string& path, const nlohmann::json& document) {
  const std::string temporary = path + ".tmp";
  const std::string text = document.dump(2) + "\n";
  std::FILE* file = std::fopen(temporary.c_str(), "w");
  PIXGRAD_CHECK(file, "cannot write '", temporary, "': ", std::strerror(errno));
  const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  const bool closed = std::fclose(file) == 0;
  if (!written || !closed || std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    std::remove(temporary.c_str());
    fail("cannot write '", path, "': ", std::strerror(error));
  }
}

}  // namespace pixgrad::apps
