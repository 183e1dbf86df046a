// libFuzzer target: the image decoders (JPEG through libjpeg-turbo, PNG
// through our chunk walk and stb_image) on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <pixgrad/core/error.h>
#include <pixgrad/data/image.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    pixgrad::data::decode_image("input", std::vector<uint8_t>(data, data + size));
  } catch (const pixgrad::Error&) {
  }
  return 0;
}
