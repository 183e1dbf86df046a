// libFuzzer target: the CMP label reader (palette or greyscale PNGs read as
// class indices, through a rewritten palette) on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <pixgrad/core/error.h>
#include <pixgrad/data/image.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    pixgrad::data::decode_label_image("input", std::vector<uint8_t>(data, data + size));
  } catch (const pixgrad::Error&) {
  }
  return 0;
}
