// The blocked GEMM driver's view of an instruction set: how it packs the
// operands and which micro-kernels multiply the packed panels. gemm.cpp owns
// the driver and the FP32 kernels; gemm_bf16.cpp plugs bf16 kernels into the
// same driver. Not part of the public API.
#pragma once

#include <cstdint>

#include <pixgrad/kernels/cpu/gemm.h>

namespace pixgrad::kernels::cpu::detail {

// Packs rows [0, mc) x columns [0, kc) of op(A) (a points at its top-left
// element) into ceil(mc/MR) panels, panel p starting at dst + p * MR * kc,
// rows past mc zero. An FP32 panel is kc x MR floats; a kernel with a denser
// element type fills only the front of each panel's slot.
using PackAFn = void (*)(const float* a, int64_t lda, bool trans, int64_t mc, int64_t kc,
                         float* dst);
// Packs rows [0, kc) x columns [0, nc) of op(B) into ceil(nc/NR) panels,
// panel q starting at dst + q * NR * kc, columns past nc zero.
using PackBFn = void (*)(const float* b, int64_t ldb, bool trans, int64_t kc, int64_t nc,
                         float* dst);
// C[m x n] = alpha * Apanel * Bpanel + beta * C for one tile (m <= MR, n <= NR).
using MicroFn = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                         int64_t m, int64_t n, float alpha, float beta);
// A full MR x NR tile reading op(A) in place (a points at the tile's first
// row of op(A) at the current k offset); used when A would be packed for only
// one or two NR panels, where packing costs as much as the product.
using MicroDirectFn = void (*)(int64_t kc, const float* a, int64_t lda, bool trans,
                               const float* b, float* c, int64_t ldc, int64_t n, float alpha,
                               float beta);
// Skinny path: C[i][j] for rows [i0, i1) of a product whose op(B) has at most
// kSkinnyMax columns, given op(B) packed transposed as bt[n x K].
using SkinnyFn = void (*)(bool trans_a, int64_t i0, int64_t i1, int64_t n, int64_t K,
                          float alpha, const float* A, int64_t lda, const float* bt, float beta,
                          float* C, int64_t rs_c, int64_t cs_c);

struct GemmKernel {
  int64_t mr, nr;
  int64_t mc, kc, nc;
  PackAFn pack_a;
  PackBFn pack_b;
  MicroFn micro;
  MicroDirectFn micro_direct;  // nullptr: always pack A
  MicroFn micro_stream;        // nullptr: no streaming stores
  SkinnyFn skinny;
};

// Products with at most this many rows or columns take the skinny path.
constexpr int64_t kSkinnyMax = 8;

// sgemm()'s contract (argument checks, threading, skinny and blocked paths)
// run with `kern`'s packing and micro-kernels.
void gemm_with(const GemmKernel& kern, bool trans_a, bool trans_b, int64_t M, int64_t N,
               int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
               float beta, float* C, int64_t ldc);

// The same with B made by a source (gemm.h's MatrixSource).
void gemm_with(const GemmKernel& kern, bool trans_a, bool trans_b, int64_t M, int64_t N,
               int64_t K, float alpha, const float* A, int64_t lda, const MatrixSource& B,
               float beta, float* C, int64_t ldc);

// The FP32 kernel of an instruction set (Scalar when this build has no x86).
const GemmKernel& sgemm_kernel(SgemmIsa isa);

}  // namespace pixgrad::kernels::cpu::detail
