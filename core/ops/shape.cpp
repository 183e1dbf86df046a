// concat: copies contiguous chunks. Viewing [d0..dk] as [outer, extent, inner]
// around the joined dimension, input i contributes extent_i * inner elements
// to each of the `outer` rows of the result. With one row, each input is one
// block of the result: slots of a joinable buffer (concat_slots) are joined
// as they lie, and the backward hands out blocks of the gradient.
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

// Elements [first, first + numel(shape)) of `base`'s storage, counted from
// base's own first element, as a tensor of `shape`; not recorded.
Tensor storage_view(const Tensor& base, int64_t first, const Shape& shape) {
  auto view = std::make_shared<TensorImpl>();
  view->storage = base.impl()->storage;
  view->offset = base.impl()->offset + first;
  view->shape = shape;
  view->dtype = base.dtype();
  return Tensor(view);
}

// Whether the pieces are slots of one joinable buffer, whole and in order,
// each one block of the result (layout.outer == 1).
bool joined_in_place(const ConcatLayout& layout, const std::vector<Tensor>& pieces) {
  if (layout.outer != 1 || !pieces[0].impl()->storage->joinable()) return false;
  int64_t next = pieces[0].impl()->offset;
  for (const Tensor& piece : pieces) {
    if (piece.impl()->storage != pieces[0].impl()->storage || piece.impl()->offset != next) return false;
    next += piece.numel();
  }
  return true;
}

}  // namespace

std::vector<Tensor> concat_slots(const std::vector<Shape>& shapes, int64_t dim, Device device, DType dtype) {
  PIXGRAD_CHECK(!shapes.empty(), "concat_slots: no shapes");
  const int64_t rank = static_cast<int64_t>(shapes[0].size());
  PIXGRAD_CHECK(dim >= 0 && dim < rank, "concat_slots: dimension ", dim, " out of range for shape ",
                shape_str(shapes[0]));
  int64_t total = 0;
  for (const Shape& shape : shapes) {
    bool compatible = static_cast<int64_t>(shape.size()) == rank;
    for (int64_t d = 0; compatible && d < rank; ++d) compatible = d == dim || shape[d] == shapes[0][d];
    PIXGRAD_CHECK(compatible, "concat_slots: shape ", shape_str(shape), " cannot join ", shape_str(shapes[0]),
                  " along dimension ", dim);
    total += shape_numel(shape);
  }
  const ConcatLayout layout = concat_layout(shapes, dim);
  if (layout.outer != 1) return std::vector<Tensor>(shapes.size());  // nothing to gain: the ops allocate
  const Tensor buffer = Tensor::empty({total}, device, dtype);
  buffer.impl()->storage->mark_joinable();
  std::vector<Tensor> slots;
  int64_t first = 0;
  for (const Shape& shape : shapes) {
    slots.push_back(storage_view(buffer, first, shape));
    first += shape_numel(shape);
  }
  return slots;
}

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
  Tensor result;
  if (joined_in_place(layout, inputs)) {
    result = storage_view(first, 0, result_shape);
  } else {
    result = Tensor::empty(result_shape, first.device(), first.dtype());
    copy_chunks(layout, result, inputs, /*gather=*/true);
  }
  // The backward copies raw chunks, or, when each piece is one block of the
  // result, hands out views of the gradient (gradients are never changed in
  // place: core/autograd.cpp adds them out of place and copies shared ones
  // before a leaf keeps them). First-order only.
  return record(
      "concat", result, inputs,
      [layout, shapes](const Tensor& g, const BackwardContext&) {
        std::vector<Tensor> grads;
        if (layout.outer == 1) {
          int64_t offset = 0;
          for (size_t i = 0; i < shapes.size(); ++i) {
            grads.push_back(storage_view(g, offset, shapes[i]));
            offset += layout.chunk[i];
          }
          return grads;
        }
        for (const Shape& shape : shapes) grads.push_back(Tensor::empty(shape, g.device(), g.dtype()));
        copy_chunks(layout, g, grads, /*gather=*/false);
        return grads;
      },
      {});
}

}  // namespace pixgrad
