// y = x · Wᵀ for a weight W that stays fixed while it is used many times, as in
// decoding: W is reordered once into the blocked layout oneDNN's matmul prefers, so a
// product no longer repacks it. oneDNN's sgemm packs its operand inside every call,
// which dominates the small row counts of a decoding step: with 16 rows and K = 256,
// 22-57 µs instead of 98-210 µs for N = 768-2048 (bench/small_matmul.cpp).
#pragma once
#include <cstdint>
#include <memory>

#include "kernels/matmul_bf16.h"

namespace fw {

class PackedMatrix {
 public:
  // w (N,K), row-major as every weight here. With w16 (its bf16 copy in bf16 mode) the
  // bf16 values are packed and products round x to bf16 with fp32 accumulation, as
  // matmul_forward_bf16 does; otherwise fp32. The matrix is copied: w may change after.
  PackedMatrix(const float* w, const bf16* w16, int64_t N, int64_t K);
  ~PackedMatrix();
  PackedMatrix(PackedMatrix&&) noexcept;
  PackedMatrix& operator=(PackedMatrix&&) noexcept;

  // y (M,N) = x (M,K) · Wᵀ, any M ≥ 0: rows in at most two parts, 16·⌊M/16⌋ and the
  // rest, each by a primitive for its row count built on first use. Not for two
  // threads at once.
  void forward(float* y, const float* x, int64_t M) const;
  // Primitives built so far: at most 16 + ⌊Mmax/16⌋ − 1 after products of up to Mmax rows.
  size_t primitives() const;
  // Bytes of the packed copy of an (N,K) matrix (padded to oneDNN's blocks).
  static size_t bytes(int64_t N, int64_t K, bool bf16);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fw
