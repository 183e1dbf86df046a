#include <pixgrad/training/run_log.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>

namespace pixgrad::training {

namespace {

bool is_number(const nlohmann::json& value) { return value.is_number(); }

// The record with every non-finite number replaced by a string.
nlohmann::json without_nonfinite(const nlohmann::json& record) {
  if (record.is_number_float() && !std::isfinite(record.get<double>())) {
    const double value = record.get<double>();
    return std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf";
  }
  if (record.is_object() || record.is_array()) {
    nlohmann::json copy = record;
    for (auto& item : copy) item = without_nonfinite(item);
    return copy;
  }
  return record;
}

}  // namespace

namespace {

// Drops the records after `iteration`: a run resumed there superseded them.
void drop_after(double iteration, std::vector<nlohmann::json>& records) {
  while (!records.empty() && records.back()["iteration"].get<double>() > iteration) records.pop_back();
}

}  // namespace

void apply_record(const nlohmann::json& record, RunRecords& records) {
  if (!record.is_object() || !record.contains("iteration") || !is_number(record["iteration"])) return;
  const double iteration = record["iteration"].get<double>();
  const auto event = record.find("event");
  if (event != record.end() && event->is_string()) {
    if (*event == "start") records = RunRecords();
    if (*event == "resume") {
      drop_after(iteration, records.training);
      drop_after(iteration, records.evaluations);
    }
    return;
  }
  if (record.contains("loss_G") && is_number(record["loss_G"])) records.training.push_back(record);
  if (record.contains("eval") && record["eval"].is_object()) records.evaluations.push_back(record);
}

RunRecords current_records(const std::vector<std::string>& lines) {
  RunRecords records;
  for (const std::string& line : lines)
    apply_record(nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false), records);
  return records;
}

RunLog::RunLog(const std::string& path) : path_(path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return;
  const std::vector<uint8_t> bytes = io::read_regular_file(path, "log", kMaxLogBytes);
  std::istringstream text(std::string(bytes.begin(), bytes.end()));
  std::vector<std::string> lines;
  // Our lines are a few hundred bytes; a longer one is not ours (and a deeply
  // nested one would cost the parser memory out of proportion).
  for (std::string line; std::getline(text, line);)
    if (line.size() <= kMaxLineBytes) lines.push_back(line);
  records_ = current_records(lines);
}

RunLog::~RunLog() {
  if (file_) std::fclose(file_);
}

void RunLog::write(const nlohmann::json& record) {
  if (!file_) file_ = io::open_for_appending(path_, "log").release();
  const nlohmann::json written = without_nonfinite(record);
  const std::string line = written.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  PIXGRAD_CHECK(std::fprintf(file_, "%s\n", line.c_str()) > 0 && std::fflush(file_) == 0, "log '",
                io::printable(path_), "': write failed: ", std::strerror(errno));
  apply_record(written, records_);
}

}  // namespace pixgrad::training
