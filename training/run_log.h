// log.jsonl: one JSON object per line, only ever appended to, so that no
// run's history is cut short. Records are
//   training   {"iteration", "epoch", "loss_G", ..., "lr", "seconds_per_iteration"}
//   evaluation {"iteration", "epoch", "eval": {...}}
//   events     {"event": "start" | "resume" | "diverged" | "error" | "stopped", "iteration", ...}
// A "start" event begins a new run in the folder (--overwrite): what came
// before belongs to the replaced run. A "resume" event at iteration N
// supersedes the records after N: the run went on from its checkpoint at N.
// Non-finite numbers never reach the file (JSON has none); values that are
// not numbers, and lines that do not parse, are skipped by the reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pixgrad::training {

// The current run's records, in the order written.
struct RunRecords {
  std::vector<nlohmann::json> training;     // with "loss_G"
  std::vector<nlohmann::json> evaluations;  // with "eval"
};
// Applies one line's record to the current run's records: a training or
// evaluation record is added, a "start" event clears them, a "resume" event
// at N drops those after N; anything else is ignored.
void apply_record(const nlohmann::json& record, RunRecords& records);
// The current run's records in a log's lines.
RunRecords current_records(const std::vector<std::string>& lines);

class RunLog {
 public:
  // Reads what `path` holds (at most kMaxLogBytes; a missing file is an empty
  // log). Nothing is written until the first write().
  explicit RunLog(const std::string& path);
  ~RunLog();
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;

  // Appends one record as a line, flushed. Numbers that are not finite are
  // written as strings ("nan", "inf").
  void write(const nlohmann::json& record);
  // The current run's training and evaluation records so far, earlier
  // invocations' included (for the loss plot and the results page).
  const std::vector<nlohmann::json>& training_records() const { return records_.training; }
  const std::vector<nlohmann::json>& evaluation_records() const { return records_.evaluations; }

  static constexpr uint64_t kMaxLogBytes = uint64_t{64} << 20;
  static constexpr size_t kMaxLineBytes = 64 * 1024;

 private:
  std::string path_;
  std::FILE* file_ = nullptr;  // opened for appending on the first write
  RunRecords records_;
};

}  // namespace pixgrad::training
