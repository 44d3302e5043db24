// Causal multi-head scaled dot-product attention.
#pragma once
#include <cstdint>

namespace fw {

// q (B,H,Tq,hd). k, v are caches (B,H,Tcap,hd) whose first Tk rows are valid.
// Query i sits at cache row q_off + i and attends to rows j ≤ q_off + i (causal;
// training has Tq = Tk = Tcap and q_off = 0).
// P (B,H,Tq,Tk): softmax probabilities, kept for backward (zero above the diagonal).
// y (B,Tq,C), C = H·hd: the heads' outputs side by side, ready for the projection.
void attention_forward(float* y, float* P, const float* q, const float* k, const float* v,
                       int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t Tcap, int64_t hd,
                       int64_t q_off);

// Training backward (Tq = Tk = T). dy (B,T,C) → dq, dk, dv (B,H,T,hd).
// scratch: num_threads() · T · T floats.
void attention_backward(float* dq, float* dk, float* dv, float* scratch, const float* dy,
                        const float* P, const float* q, const float* k, const float* v, int64_t B,
                        int64_t H, int64_t T, int64_t hd);

}  // namespace fw
