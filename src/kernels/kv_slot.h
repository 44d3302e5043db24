// Where a block call reads and writes keys and values.
// Caches k, v are (rows, H, Tcap, hd). Batch row b of the call uses cache row
// row(b) and appends its T new tokens after the past(b) tokens already there.
// Training keeps its own keys per batch row (rows = len = null: cache row b, empty);
// the batched generator passes, per batch row, which sequence it is and how many
// tokens that sequence has cached in this layer (they differ under Mixture-of-Depths).
// A generator may keep its caches in bf16 (k16, v16 instead of k, v; --kv-cache bf16):
// the rotated keys and the values are rounded to bf16 as they are written, halving
// the bytes a decoding step reads, which at 16 sequences of ~170 tokens are more than
// the weights' (kernels/attention.h).
#pragma once
#include <cstdint>

#include "kernels/matmul_bf16.h"  // bf16

namespace fw {

struct KvSlot {
  float* k;
  float* v;
  int64_t Tcap;
  const int64_t* rows = nullptr;  // (B) cache row of each batch row; null: b
  const int64_t* len = nullptr;   // (B) tokens already cached there; null: 0
  bf16* k16 = nullptr;            // bf16 caches, the same shape, instead of k and v
  bf16* v16 = nullptr;

  bool bf16_cache() const { return k16 != nullptr; }
  int64_t row(int64_t b) const { return rows ? rows[b] : b; }
  int64_t past(int64_t b) const { return len ? len[b] : 0; }
  // Offset of the (Tcap, hd) keys / values of head h for batch row b, in k, v (or k16, v16).
  int64_t head(int64_t b, int64_t h, int64_t H, int64_t hd) const { return ((row(b) * H + h) * Tcap) * hd; }
  float* k_head(int64_t b, int64_t h, int64_t H, int64_t hd) const { return k + head(b, h, H, hd); }
  float* v_head(int64_t b, int64_t h, int64_t H, int64_t hd) const { return v + head(b, h, H, hd); }
};

}  // namespace fw
