// log.jsonl: one JSON object per line — training records (iteration, epoch,
// mean losses over the interval, seconds per iteration) and evaluation
// records. Resuming first drops records past the checkpoint's iteration, so
// the log reads as one uninterrupted run.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pixgrad::training {

class RunLog {
 public:
  // Opens `path` for appending. A resumed run passes its checkpoint's
  // iteration and keeps the records up to it; a fresh run passes 0 and
  // starts an empty log.
  RunLog(const std::string& path, int64_t keep_through);
  ~RunLog();
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;

  void write(const nlohmann::json& record);
  // Training records so far (earlier runs' included), for the loss plot.
  const std::vector<nlohmann::json>& training_records() const { return training_records_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::vector<nlohmann::json> training_records_;
};

}  // namespace pixgrad::training
