// Fast feedforward trees, the UltraFastBERT form (arXiv 2311.10770): the conditional matrix
// multiplication (CMM) that replaces an MLP. K trees, each a complete binary tree of
// depth D with N = 2^(D+1) − 1 neurons in heap order (children of n: 2n+1 left,
// 2n+2 right). A token x visits D+1 neurons per tree, root to leaf:
//   λ = x·w_in[n] + b[n];  y += GELU(λ)·w_out[n];  n ← λ > 0 ? 2n+2 : 2n+1
// Only visited neurons compute, forward and backward; the branch is a constant.
// Weights, one row per neuron: w_in (K·N, C), b (K·N), w_out (K·N, C).
#pragma once
#include <cstdint>

#include "kernels/matmul_bf16.h"  // bf16

namespace fw {

struct TreeShape {
  int64_t K, D, C;  // trees, depth, width
  int64_t nodes() const { return (int64_t(2) << D) - 1; }  // per tree
  int64_t path() const { return D + 1; }                    // neurons a token visits per tree
};

// How the forward pass visits tokens and rows. Both forms compute every λ with the same
// dot product (kernels/row_ops.h), so paths and outputs are equal bit for bit.
//   per_token: each token walks its paths alone, tokens in parallel (batch 1, decode);
//   batched:   levels walked by tiles of tokens, then the tokens bucketed by the
//              subtree they entered, so each deep row serves its bucket (prefill, training);
//   automatic: per_token below 64 tokens, else batched.
enum class FffForm { automatic, per_token, batched };

// x, y (M, C). path (M, K, D+1): the visited neurons' indices within their tree, as
// floats (exact below 2^24); lam (M, K, D+1) their λ. Both are kept for backward.
// A token touches 2·K·(D+1) rows of C floats, never the rest.
void fff_forward(float* y, float* path, float* lam, const float* x, const float* w_in,
                 const float* b, const float* w_out, const TreeShape& s, int64_t M,
                 FffForm form = FffForm::automatic);
// bf16 mode (train.matmul_bf16): the same with bf16 copies of w_in and w_out; each λ
// is a bf16 dot product summed in fp32 (kernels/row_ops.h), outputs sum in fp32.
void fff_forward(float* y, float* path, float* lam, const float* x, const bf16* w_in,
                 const float* b, const bf16* w_out, const TreeShape& s, int64_t M,
                 FffForm form = FffForm::automatic);

// dy (M, C) → dx (M, C) (overwritten); dw_in, db, dw_out accumulate (+=), each
// visited neuron's rows only. dlam (M, K, D+1): scratch.
//   dλ = GELU'(λ)·⟨dy, w_out[n]⟩,  dx = Σ dλ·w_in[n],
//   dw_in[n] += dλ·x,  db[n] += dλ,  dw_out[n] += GELU(λ)·dy.
// The input side runs per token; the weight side sorts each tree's tokens by leaf, so
// the tokens below a node come in one run whose sum stays in registers, and gives each
// (tree, 64 columns) of a gradient to one thread: no atomics, and the result is the
// same for any thread count.
void fff_backward(float* dx, float* dw_in, float* db, float* dw_out, float* dlam, const float* dy,
                  const float* x, const float* path, const float* lam, const float* w_in,
                  const float* w_out, const TreeShape& s, int64_t M);
// bf16 mode: dλ and dx from the bf16 rows; the weight gradients stay fp32.
void fff_backward(float* dx, float* dw_in, float* db, float* dw_out, float* dlam, const float* dy,
                  const float* x, const float* path, const float* lam, const bf16* w_in,
                  const bf16* w_out, const TreeShape& s, int64_t M);

}  // namespace fw
