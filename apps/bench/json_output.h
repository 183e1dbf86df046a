// Writing a benchmark's JSON results: the whole document each time, to a
// temporary file renamed into place, so that a run stopped at any moment
// (a time limit, Ctrl-C) leaves the results measured so far, never a
// half-written file.
#pragma once

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include <pixgrad/core/file_io.h>

namespace pixgrad::apps {

inline void write_json_file(const std::string& path, const nlohmann::json& document) {
  const std::string text = document.dump(2) + "\n";
  io::write_file_atomically(path, "results", [&](std::FILE* file) {
    return std::fwrite(text.data(), 1, text.size(), file) == text.size();
  });
}

}  // namespace pixgrad::apps
