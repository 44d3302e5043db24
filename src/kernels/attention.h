// Multi-head scaled dot-product attention: causal (decoders) or bidirectional over
// each batch row's real tokens (encoders).
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/kv_slot.h"

namespace fw {

// Which keys a query sees. Causal: query i of a row with `past` cached keys sees keys
// j ≤ past + i. Bidirectional: every query of batch row b sees keys j < lengths[b],
// the row's real tokens; the keys after them are padding and never attended to
// (padding queries attend to the real keys too; their outputs are never used).
struct AttentionMask {
  bool causal = true;
  const int32_t* lengths = nullptr;  // (B) bidirectional: real tokens per row; null: every key
  int64_t visible(int64_t b, int64_t i, int64_t past, int64_t Tk) const {
    if (causal) return std::min(Tk, past + i + 1);
    return lengths ? std::min<int64_t>(Tk, lengths[b]) : Tk;
  }
};

// q (B,H,Tq,hd). kv: the caches, already holding this call's keys and values.
// Query i of batch row b sits at cache row kv.past(b) + i and attends to the keys the
// mask makes visible (causal: rows j ≤ kv.past(b) + i; training has nothing cached
// before, Tq = Tcap). P (B,H,Tq,ldp) with ldp ≥ past(b) + Tq: softmax probabilities,
// kept for backward (zero at keys not visible).
// y (B,Tq,C), C = H·hd: the heads' outputs side by side, ready for the projection.
// A bf16 cache (kv.k16, kv.v16) is read widened to fp32: one query per row (decoding)
// by a kernel that widens each row as it loads it, blocks of queries (prompt chunks)
// through sgemm over the visible rows widened first. Scores, softmax and sums in fp32.
void attention_forward(float* y, float* P, const float* q, const KvSlot& kv, int64_t B, int64_t H,
                       int64_t Tq, int64_t hd, int64_t ldp, const AttentionMask& mask = {});

// Training backward (Tq = Tk = T). dy (B,T,C) → dq, dk, dv (B,H,T,hd).
// scratch: num_threads() · T · T floats.
void attention_backward(float* dq, float* dk, float* dv, float* scratch, const float* dy,
                        const float* P, const float* q, const float* k, const float* v, int64_t B,
                        int64_t H, int64_t T, int64_t hd, const AttentionMask& mask = {});

}  // namespace fw
