#include "models/training/run_log.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/error.h"

namespace pixgrad::training {

RunLog::RunLog(const std::string& path, int64_t keep_through) : path_(path) {
  std::vector<std::string> kept;
  if (keep_through > 0) {
    std::ifstream existing(path);
    std::string line;
    while (std::getline(existing, line)) {
      const nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!record.is_object() || !record.contains("iteration") || !record["iteration"].is_number()) continue;
      if (record["iteration"].get<int64_t>() > keep_through) continue;
      kept.push_back(line);
      if (record.contains("loss_G")) training_records_.push_back(record);
    }
  }
  // Rewrite the kept prefix through a temporary file, then append to it.
  const std::string temporary = path + ".tmp";
  std::FILE* out = std::fopen(temporary.c_str(), "w");
  PIXGRAD_CHECK(out, "log '", temporary, "': cannot write: ", std::strerror(errno));
  for (const std::string& line : kept) std::fprintf(out, "%s\n", line.c_str());
  const bool written = std::fflush(out) == 0 && std::fclose(out) == 0;
  PIXGRAD_CHECK(written && std::rename(temporary.c_str(), path.c_str()) == 0, "log '", path,
                "': cannot write: ", std::strerror(errno));
  file_ = std::fopen(path.c_str(), "a");
  PIXGRAD_CHECK(file_, "log '", path, "': cannot append: ", std::strerror(errno));
}

RunLog::~RunLog() {
  if (file_) std::fclose(file_);
}

void RunLog::write(const nlohmann::json& record) {
  const std::string line = record.dump();
  PIXGRAD_CHECK(std::fprintf(file_, "%s\n", line.c_str()) > 0 && std::fflush(file_) == 0, "log '", path_,
                "': write failed: ", std::strerror(errno));
  if (record.contains("loss_G")) training_records_.push_back(record);
}

}  // namespace pixgrad::training
