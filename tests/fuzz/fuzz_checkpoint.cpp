// libFuzzer target: a checkpoint's training metadata. The input is split at
// its first newline into the "config" and the "state" JSON texts of an
// otherwise valid checkpoint, which read_checkpoint then parses and checks
// as it would a file's.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include <pixgrad/core/error.h>
#include <pixgrad/core/safetensors.h>
#include <pixgrad/training/checkpoint.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t newline = text.find('\n');
  const std::string config = text.substr(0, newline);
  const std::string state = newline == std::string::npos ? "" : text.substr(newline + 1);
  const nlohmann::json header = {
      {"__metadata__", {{"pixgrad.format", "pix2pix-checkpoint-1"}, {"config", config}, {"state", state}}}};
  std::string bytes = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const uint64_t length = bytes.size();
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>(length >> (8 * i));
  file += bytes;
  try {
    pixgrad::training::read_checkpoint(
        "input", pixgrad::safetensors::load_from_memory("input", reinterpret_cast<const uint8_t*>(file.data()),
                                                        file.size()));
  } catch (const pixgrad::Error&) {
  }
  return 0;
}
