// Where a block call reads and writes keys and values.
// Caches k, v are (rows, H, Tcap, hd). Batch row b of the call uses cache row
// row(b) and appends its T new tokens after the past(b) tokens already there.
// Training keeps its own keys per batch row (rows = len = null: cache row b, empty);
// the batched generator passes, per batch row, which sequence it is and how many
// tokens that sequence has cached in this layer (they differ under Mixture-of-Depths).
#pragma once
#include <cstdint>

namespace fw {

struct KvSlot {
  float* k;
  float* v;
  int64_t Tcap;
  const int64_t* rows = nullptr;  // (B) cache row of each batch row; null: b
  const int64_t* len = nullptr;   // (B) tokens already cached there; null: 0

  int64_t row(int64_t b) const { return rows ? rows[b] : b; }
  int64_t past(int64_t b) const { return len ? len[b] : 0; }
  // The (Tcap, hd) keys / values of head h for batch row b.
  float* k_head(int64_t b, int64_t h, int64_t H, int64_t hd) const { return k + ((row(b) * H + h) * Tcap) * hd; }
  float* v_head(int64_t b, int64_t h, int64_t H, int64_t hd) const { return v + ((row(b) * H + h) * Tcap) * hd; }
};

}  // namespace fw
