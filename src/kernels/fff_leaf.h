// Fast feedforward networks in their original form (Belcak & Wattenhofer 2023):
// per tree, a complete binary tree of depth D whose R = 2^D − 1 internal nodes are
// routers p_n = σ(x·r_w[n] + r_b[n]) (right with p, left with 1 − p; heap order) over
// L = 2^D leaves, each a small MLP of width l: leaf(x) = w2ᵀ·GELU(w1·x + b1) + b2.
// K trees are summed.
//   Training (soft): every leaf runs and the output mixes them by their path
//   probabilities; with probability ρ a router's children swap for a token
//   ("randomized child transpositions"); the hardening loss is the mean entropy of the
//   router decisions. Inference (hard): descend by p > 0.5 and run one leaf per tree.
// Weights: r_w (K·R, C), r_b (K·R); w1 (K·L·l, C), b1 (K·L·l); w2 (K·L·l, C) (one row
// per hidden neuron: its output vector), b2 (K·L, C).
#pragma once
#include <cstdint>

namespace fw {

struct LeafShape {
  int64_t K, D, l, C;  // trees, depth, leaf width, model width
  int64_t R() const { return (int64_t(1) << D) - 1; }  // routers per tree
  int64_t L() const { return int64_t(1) << D; }        // leaves per tree
};

struct LeafWeights {
  const float *r_w, *r_b, *w1, *b1, *w2, *b2;
};
struct LeafGrads {
  float *r_w, *r_b, *w1, *b1, *w2, *b2;
};

// What the soft forward keeps (M tokens).
struct LeafSoftActs {
  float* logits;  // (M, K·R) router logits
  float* flip;    // (M, K·R) 1 where the router's children were swapped, else 0
  float* prob;    // (M, K·(2L−1)) probability of reaching each node (heap order per tree)
  float* pl;      // (M, K·L) the leaves' probabilities
  float* h1;      // (M, K·L·l) leaf pre-activations
  float* g;       // (M, K·L·l) GELU(h1)
  float* gs;      // (M, K·L·l) g scaled by its leaf's probability
};
struct LeafSoftScratch {
  float* dgs;     // (M, K·L·l)
  float* dpl;     // (M, K·L)
  float* dprob;   // (M, K·(2L−1))
  float* dlogit;  // (M, K·R)
};

// y (M, C) = Σ_k Σ_leaves P(leaf | x)·leaf(x). Children swap with probability
// transpose_prob, drawn from a hash of (seed, token, router): deterministic per seed.
// Returns the mean router-decision entropy over the M·K·R decisions (0 when D = 0).
double leaf_soft_forward(float* y, LeafSoftActs& a, const float* x, const LeafWeights& w, const LeafShape& s,
                         int64_t M, double transpose_prob, uint64_t seed);

// dy (M, C) → dx (M, C) (overwritten); gradients accumulate into dw. hardening_grad:
// the weight of the mean entropy in the loss being differentiated (times its scale).
void leaf_soft_backward(float* dx, const LeafGrads& dw, LeafSoftScratch& sc, const float* dy, const float* x,
                        const LeafSoftActs& a, const LeafWeights& w, const LeafShape& s, int64_t M,
                        float hardening_grad);

// Inference: y (M, C); leaf (M, K) the leaf each tree chose (as float); hidden (M, K·l) scratch.
// Each token walks alone (tokens in parallel) with the row operations of kernels/row_ops.h:
// four hidden neurons' dot products at a time, the leaf's output rows summed in one pass.
void leaf_hard_forward(float* y, float* leaf, float* hidden, const float* x, const LeafWeights& w,
                       const LeafShape& s, int64_t M);

}  // namespace fw
