// Causal multi-head scaled dot-product attention.
#pragma once
#include <cstdint>

#include "kernels/kv_slot.h"

namespace fw {

// q (B,H,Tq,hd). kv: the caches, already holding this call's keys and values.
// Query i of batch row b sits at cache row kv.past(b) + i and attends to the rows
// j ≤ kv.past(b) + i (causal; training has nothing cached before, Tq = Tcap).
// P (B,H,Tq,ldp) with ldp ≥ past(b) + Tq: softmax probabilities, kept for backward
// (zero above the diagonal).
// y (B,Tq,C), C = H·hd: the heads' outputs side by side, ready for the projection.
void attention_forward(float* y, float* P, const float* q, const KvSlot& kv, int64_t B, int64_t H,
                       int64_t Tq, int64_t hd, int64_t ldp);

// Training backward (Tq = Tk = T). dy (B,T,C) → dq, dk, dv (B,H,T,hd).
// scratch: num_threads() · T · T floats.
void attention_backward(float* dq, float* dk, float* dv, float* scratch, const float* dy,
                        const float* P, const float* q, const float* k, const float* v, int64_t B,
                        int64_t H, int64_t T, int64_t hd);

}  // namespace fw
