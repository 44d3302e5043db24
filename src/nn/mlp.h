// The feedforward sub-layer of a block, y = MLP(x) on M rows of width C, in the
// form model.mlp chooses (nn/config.h MlpShape):
//   dense:  y = proj(GELU(fc(x)))               fc (F, C), proj (C, F), via oneDNN
//   fff:    the tree CMM of kernels/fff.h         w_in, w_out (K·N, C), b_in (K·N)
//   none:   no sub-layer (the block skips it, its norm included)
#pragma once
#include <cstdint>
#include <functional>

#include "nn/config.h"

namespace fw {

struct MlpWeights {
  float* fc = nullptr;     // dense (F, C)
  float* proj = nullptr;   // dense (C, F)
  const uint16_t *fc16 = nullptr, *proj16 = nullptr;  // their bf16 copies in bf16 mode
  float* w_in = nullptr;   // fff (K·N, C): one row per neuron, trees one after another
  float* b_in = nullptr;   // fff (K·N)
  float* w_out = nullptr;  // fff (K·N, C)
};

// What the forward keeps for the backward.
struct MlpActs {
  float* fc = nullptr;    // dense (M, F) pre-activation
  float* g = nullptr;     // dense (M, F) GELU(fc)
  float* path = nullptr;  // fff (M, K, D+1) visited neurons (index in tree, as float)
  float* lam = nullptr;   // fff (M, K, D+1) their pre-activations λ
};

// Backward scratch, shared by all blocks.
struct MlpScratch {
  float* dh = nullptr;    // dense (M, F) gradient at the hidden layer; fff (M, K, D+1) dλ
};

void for_each_mlp_act(MlpActs& a, const MlpShape& s, int64_t M, const std::function<void(float*&, size_t)>& f);
void for_each_mlp_scratch(MlpScratch& sc, const MlpShape& s, int64_t M,
                          const std::function<void(float*&, size_t)>& f);

// x, y (M, C): y = MLP(x) (overwritten). Not called for MlpKind::none.
void mlp_forward(const MlpShape& s, const MlpWeights& w, MlpActs& a, float* y, const float* x, int64_t M,
                 int64_t C);
// dy (M, C) → dx (M, C) (overwritten); weight gradients accumulate into dw.
void mlp_backward(const MlpShape& s, const MlpWeights& w, const MlpWeights& dw, const MlpActs& a,
                  MlpScratch& sc, float* dx, const float* dy, const float* x, int64_t M, int64_t C);

// fff: adds each token's visits to counts (K·N): how many tokens reach each neuron.
void count_tree_visits(const MlpShape& s, const float* path, int64_t tokens, int64_t* counts);
// fff: the fraction of leaves (the 2^D last-level neurons of each tree) with a visit.
double leaves_used(const MlpShape& s, const int64_t* counts);

// Parameters of one block's MLP (without its norm).
int64_t mlp_params(const MlpShape& s, int64_t C);

}  // namespace fw
