#include <pixgrad/core/shape.h>

#include <limits>

#include <pixgrad/core/error.h>

namespace pixgrad {

int64_t shape_numel(const Shape& shape) {
  int64_t count = 1;
  for (int64_t extent : shape) {
    PIXGRAD_CHECK(extent >= 0, "shape ", shape_str(shape), ": negative extent");
    PIXGRAD_CHECK(extent == 0 || count <= std::numeric_limits<int64_t>::max() / extent, "shape ", shape_str(shape),
                  ": element count overflows");
    count *= extent;
  }
  return count;
}

std::string shape_str(const Shape& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

}  // namespace pixgrad
