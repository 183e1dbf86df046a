// Tensor shapes: a list of non-negative extents, outermost first (NCHW).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pixgrad {

using Shape = std::vector<int64_t>;

// Product of the extents; throws on a negative extent or on overflow.
int64_t shape_numel(const Shape& shape);
// "[1, 3, 256, 256]"
std::string shape_str(const Shape& shape);

}  // namespace pixgrad
