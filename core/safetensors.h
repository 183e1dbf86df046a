// The safetensors file format (Hugging Face), for checkpoints and exported
// weights:
//   8 bytes   N, the header length, little-endian
//   N bytes   a JSON object: {"<name>": {"dtype": "F32", "shape": [...],
//             "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}},
//             padded with spaces to a multiple of 8
//   the rest  the tensors' raw little-endian bytes; offsets count from here
// Only F32 and F64 are read and written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include <pixgrad/core/tensor.h>

namespace pixgrad::safetensors {

// Writes atomically: to "<path>.tmp" in the same directory, flushed and
// fsync'ed, then renamed over `path`; on any failure the old file is left as
// it was and pixgrad::Error "safetensors: cannot write '<path>': <reason>" is
// thrown. Tensors may live on any device.
void save(const std::string& path, const std::map<std::string, Tensor>& tensors,
          const std::map<std::string, std::string>& metadata = {});

struct File {
  std::map<std::string, Tensor> tensors;  // on the CPU
  std::map<std::string, std::string> metadata;
};

// Reads a file as untrusted input, validating it as the reference reader
// does; any problem is a one-line pixgrad::Error "safetensors: '<path>': <problem>".
File load(const std::string& path);
// The same for a file's bytes in memory (tests, fuzzing); `name` stands for
// the path in errors.
File load_from_memory(const std::string& name, const uint8_t* data, size_t size);

}  // namespace pixgrad::safetensors
