// Rotary position embeddings on interleaved pairs (x[2i], x[2i+1]) of each head,
// angle pos · θ^(-2i/hd) with θ = 10000, and the split of a fused QKV projection
// into per-head q, k, v.
#pragma once
#include <cstdint>

#include "kernels/kv_slot.h"

namespace fw {

constexpr float kRopeTheta = 10000.0f;

// cos, sin (npos, hd/2): the angle table for positions 0..npos-1.
void rope_table(float* cos_t, float* sin_t, int64_t npos, int64_t hd);

// qkv (B,T,3C) with C = H·hd, token layout [q | k | v].
// q (B,H,T,hd) gets rotated q. Token t of batch row b goes to the caches of kv at
// kv.past(b) + t (k rotated). pos (B,T) holds each token's position; the positions,
// not the cache rows, set the rotation (MoD routes by position).
void rope_split_forward(float* q, const KvSlot& kv, const float* qkv, const int32_t* pos,
                        const float* cos_t, const float* sin_t, int64_t B, int64_t T, int64_t H,
                        int64_t hd);

// The adjoint for training (own keys: Tcap == T, nothing cached before): dq, dk, dv (B,H,T,hd) → dqkv (B,T,3C).
void rope_split_backward(float* dqkv, const float* dq, const float* dk, const float* dv,
                         const int32_t* pos, const float* cos_t, const float* sin_t, int64_t B,
                         int64_t T, int64_t H, int64_t hd);

}  // namespace fw
