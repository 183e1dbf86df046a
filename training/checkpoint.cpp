#include <pixgrad/training/checkpoint.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>
#include <pixgrad/core/safetensors.h>

namespace pixgrad::training {

namespace {

constexpr const char* kFormatKey = "pixgrad.format";
constexpr int64_t kMaxCount = int64_t{1} << 53;
constexpr size_t kMaxMetadataBytes = 64 * 1024;
constexpr const char* kFormat = "pix2pix-checkpoint-1";

nlohmann::json state_to_json(const TrainState& s) {
  return {{"iteration", s.iteration}, {"epoch", s.epoch},           {"batches_done", s.batches_done},
          {"rng_seed", s.rng_seed},   {"rng_offset", s.rng_offset}};
}

// A count from an untrusted checkpoint: an integer in [0, 2^53].
int64_t count_field(const nlohmann::json& json, const char* field) {
  const nlohmann::json& value = json.at(field);
  PIXGRAD_CHECK(value.is_number_integer() && value.get<int64_t>() >= 0 && value.get<int64_t>() <= kMaxCount,
                "state field '", field, "' is ", value.dump(), ", not an integer in 0..2^53");
  return value.get<int64_t>();
}

uint64_t word_field(const nlohmann::json& json, const char* field) {
  const nlohmann::json& value = json.at(field);
  PIXGRAD_CHECK(value.is_number_unsigned(), "state field '", field, "' is ", value.dump(),
                ", not a non-negative integer");
  return value.get<uint64_t>();
}

TrainState state_from_json(const nlohmann::json& json) {
  PIXGRAD_CHECK(json.is_object(), "the state is not a JSON object");
  TrainState s;
  s.iteration = count_field(json, "iteration");
  s.epoch = count_field(json, "epoch");
  s.batches_done = count_field(json, "batches_done");
  s.rng_seed = word_field(json, "rng_seed");
  s.rng_offset = word_field(json, "rng_offset");
  return s;
}

// The metadata's JSON, bounded before it is parsed: real ones are < 2 KiB.
nlohmann::json parse_metadata_json(const std::map<std::string, std::string>& metadata, const char* key) {
  const auto found = metadata.find(key);
  PIXGRAD_CHECK(found != metadata.end(), "no '", key, "' metadata");
  PIXGRAD_CHECK(found->second.size() <= kMaxMetadataBytes, "'", key, "' metadata is ", found->second.size(),
                " bytes (at most ", kMaxMetadataBytes, ")");
  return nlohmann::json::parse(found->second);
}

}  // namespace

void save_checkpoint(const std::string& path, const std::map<std::string, Tensor>& tensors, const TrainConfig& config,
                     const TrainState& state) {
  safetensors::save(path, tensors,
                    {{kFormatKey, kFormat}, {"config", to_json(config).dump()}, {"state", state_to_json(state).dump()}});
}

Checkpoint load_checkpoint(const std::string& path) {
  safetensors::File file;
  try {
    file = safetensors::load(path);
  } catch (const Error& error) {
    // An image or any other file given by mistake reads as a nonsense header.
    fail("checkpoint '", io::printable(path), "': not a readable checkpoint file (", error.what(), ")");
  }
  return read_checkpoint(path, std::move(file));
}

std::map<std::string, Tensor> tensors_with_prefix(const Checkpoint& checkpoint, const std::string& prefix) {
  std::map<std::string, Tensor> selected;
  for (const auto& [name, tensor] : checkpoint.tensors)
    if (name.compare(0, prefix.size(), prefix) == 0) selected.emplace(name.substr(prefix.size()), tensor);
  return selected;
}

bool holds_training_state(const Checkpoint& checkpoint) {
  for (const char* prefix : {"G.", "D.", "optimizer_G.", "optimizer_D."})
    if (tensors_with_prefix(checkpoint, prefix).empty()) return false;
  return true;
}

void check_state_values(const std::string& path, const std::map<std::string, Tensor>& tensors,
                        const std::string& prefix, const std::string& advice) {
  const auto ends_with = [](const std::string& name, const std::string& tail) {
    return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (const auto& [name, tensor] : tensors) {
    const bool variance = ends_with(name, "exp_avg_sq") || ends_with(name, "running_var");
    for (const double v : tensor.to_double_vector())
      PIXGRAD_CHECK(std::isfinite(v) && (!variance || v >= 0), "checkpoint '", io::printable(path), "': ",
                    io::printable(prefix + name), " holds ", v, " (a diverged state?); ", advice);
  }
}

Checkpoint read_checkpoint(const std::string& path, safetensors::File file) {
  const auto format = file.metadata.find(kFormatKey);
  PIXGRAD_CHECK(format != file.metadata.end() && format->second == kFormat, "checkpoint '", io::printable(path),
                "': not a pixgrad pix2pix checkpoint (metadata '", kFormatKey, "' is ",
                format == file.metadata.end() ? "missing" : "'" + io::printable(format->second) + "'", ")");
  Checkpoint checkpoint;
  try {
    checkpoint.config = config_from_json(parse_metadata_json(file.metadata, "config"));
    checkpoint.state = state_from_json(parse_metadata_json(file.metadata, "state"));
  } catch (const std::exception& error) {
    fail("checkpoint '", io::printable(path), "': bad training metadata (", io::printable(error.what()), ")");
  }
  checkpoint.tensors = std::move(file.tensors);
  return checkpoint;
}

}  // namespace pixgrad::training
