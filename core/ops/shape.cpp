// concat: copies contiguous chunks. Viewing [d0..dk] as [outer, extent, inner]
// around the joined dimension, input i contributes extent_i * inner elements
// to each of the `outer` rows of the result.
#include <pixgrad/core/autograd.h>
#include <pixgrad/core/dispatch.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/kernels/cpu/copy.h>
#include <pixgrad/kernels/cuda/copy.h>

namespace pixgrad {

namespace {

struct ConcatLayout {
  int64_t outer = 1;
  std::vector<int64_t> chunk;  // elements each input contributes per outer row
  int64_t row = 0;             // elements per outer row of the result
};

ConcatLayout concat_layout(const std::vector<Shape>& shapes, int64_t dim) {
  ConcatLayout layout;
  for (int64_t d = 0; d < dim; ++d) layout.outer *= shapes[0][d];
  for (const Shape& shape : shapes) {
    int64_t inner = 1;
    for (size_t d = static_cast<size_t>(dim); d < shape.size(); ++d) inner *= shape[d];
    layout.chunk.push_back(inner);
    layout.row += inner;
  }
  return layout;
}

// Copies between the result and its pieces; `gather` = pieces -> result.
// Piece i occupies columns [offset_i, offset_i + chunk_i) of each result row.
void copy_chunks(const ConcatLayout& layout, const Tensor& whole, const std::vector<Tensor>& pieces, bool gather) {
  const int64_t element = static_cast<int64_t>(element_size(whole.dtype()));
  char* whole_bytes = static_cast<char*>(whole.raw_data());
  int64_t offset = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    char* piece_bytes = static_cast<char*>(pieces[i].raw_data());
    char* slot = whole_bytes + offset * element;
    const int64_t chunk_bytes = layout.chunk[i] * element, row_bytes = layout.row * element;
    run_kernel("concat", whole, [&](auto on, auto) {
      if (gather)
        copy_rows(on, slot, row_bytes, piece_bytes, chunk_bytes, chunk_bytes, layout.outer);
      else
        copy_rows(on, piece_bytes, chunk_bytes, slot, row_bytes, chunk_bytes, layout.outer);
    });
    offset += layout.chunk[i];
  }
}

}  // namespace

Tensor concat(const std::vector<Tensor>& inputs, int64_t dim) {
  PIXGRAD_CHECK(!inputs.empty(), "concat: no inputs");
  const Tensor& first = inputs[0];
  PIXGRAD_CHECK(first.defined(), "concat: input 0 is undefined");
  const int64_t rank = first.dim();
  PIXGRAD_CHECK(dim >= 0 && dim < rank, "concat: dimension ", dim, " out of range for shape ",
                shape_str(first.shape()));
  Shape result_shape = first.shape();
  result_shape[dim] = 0;
  std::vector<Shape> shapes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    PIXGRAD_CHECK(t.defined(), "concat: input ", i, " is undefined");
    bool compatible = t.dim() == rank && t.dtype() == first.dtype() && t.device() == first.device();
    for (int64_t d = 0; compatible && d < rank; ++d) compatible = d == dim || t.shape()[d] == first.shape()[d];
    PIXGRAD_CHECK(compatible, "concat: along dimension ", dim, ", input ", i, " ", shape_str(t.shape()), " ",
                  to_string(t.dtype()), " ", t.device().str(), " does not match input 0 ", shape_str(first.shape()),
                  " ", to_string(first.dtype()), " ", first.device().str());
    result_shape[dim] += t.shape()[dim];
    shapes.push_back(t.shape());
  }
  PIXGRAD_CHECK(shape_numel(result_shape) > 0, "concat: result ", shape_str(result_shape), " is empty");

  const ConcatLayout layout = concat_layout(shapes, dim);
  Tensor result = Tensor::empty(result_shape, first.device(), first.dtype());
  copy_chunks(layout, result, inputs, /*gather=*/true);
  // The backward copies raw chunks: first-order only.
  return record(
      "concat", result, inputs,
      [layout, shapes](const Tensor& g, const BackwardContext&) {
        std::vector<Tensor> grads;
        for (const Shape& shape : shapes) grads.push_back(Tensor::empty(shape, g.device(), g.dtype()));
        copy_chunks(layout, g, grads, /*gather=*/false);
        return grads;
      },
      {});
}

}  // namespace pixgrad
