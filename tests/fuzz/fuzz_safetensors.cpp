// libFuzzer target: the safetensors reader on arbitrary bytes. Any input must
// either load or raise pixgrad::Error; anything else (a crash, a sanitizer
// report, an allocation past the limit) is a finding.
#include <cstddef>
#include <cstdint>

#include <pixgrad/core/error.h>
#include <pixgrad/core/safetensors.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    pixgrad::safetensors::load_from_memory("input", data, size);
  } catch (const pixgrad::Error&) {
  }
  return 0;
}
