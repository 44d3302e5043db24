// The feedforward sub-layer of a block, y = MLP(x) on M rows of width C, in the
// form model.mlp chooses (nn/config.h MlpShape):
//   dense:  y = proj(GELU(fc(x)))               fc (F, C), proj (C, F), via oneDNN
//   fff:    the tree CMM of kernels/fff.h         w_in, w_out (K·N, C), b_in (K·N)
//   fff_leaf: routers over leaf MLPs (kernels/fff_leaf.h): soft mixture in training,
//           one leaf per tree in evaluation and sampling
//   none:   no sub-layer (the block skips it, its norm included)
#pragma once
#include <cstdint>
#include <functional>

#include "kernels/fff_leaf.h"
#include "nn/config.h"
#include "nn/params.h"

namespace fw {

class PackedMatrix;  // kernels/packed_matmul.h

// How a forward runs. Training: fff_leaf mixes all leaves softly, with random child
// transpositions drawn from seed (the run's random stream gives one per micro-batch);
// inference: every kind takes its hard path. The other kinds ignore the mode.
struct ForwardMode {
  bool train = false;
  uint64_t seed = 0;
};

struct MlpWeights {
  float* fc = nullptr;     // dense (F, C)
  float* proj = nullptr;   // dense (C, F)
  const uint16_t *fc16 = nullptr, *proj16 = nullptr;  // their bf16 copies in bf16 mode
  const PackedMatrix *fc_packed = nullptr, *proj_packed = nullptr;  // decoding's packed copies
  float* w_in = nullptr;   // fff (K·N, C): one row per neuron, trees one after another
  float* b_in = nullptr;   // fff (K·N)
  float* w_out = nullptr;  // fff (K·N, C)
  const uint16_t *w_in16 = nullptr, *w_out16 = nullptr;  // their bf16 copies in bf16 mode
  float* r_w = nullptr;    // fff_leaf (K·R, C) routers
  float* r_b = nullptr;    // fff_leaf (K·R)
  float* w1 = nullptr;     // fff_leaf (K·L·l, C) leaf hidden neurons
  float* b1 = nullptr;     // fff_leaf (K·L·l)
  float* w2 = nullptr;     // fff_leaf (K·L·l, C) their output rows
  float* b2 = nullptr;     // fff_leaf (K·L, C) leaf output biases
};

// What the forward keeps for the backward.
struct MlpActs {
  float* fc = nullptr;    // dense (M, F) pre-activation
  float* g = nullptr;     // dense (M, F) GELU(fc)
  float* path = nullptr;  // fff (M, K, D+1) visited neurons (index in tree, as float)
  float* lam = nullptr;   // fff (M, K, D+1) their pre-activations λ
  LeafSoftActs soft{};    // fff_leaf, training forward
  float* leaf = nullptr;  // fff_leaf (M, K) the leaf each tree chose (evaluation forward)
  float* hidden = nullptr;  // fff_leaf (M, K·l) that leaf's hidden activations
};

// Backward scratch, shared by all blocks.
struct MlpScratch {
  float* dh = nullptr;    // dense (M, F) gradient at the hidden layer; fff (M, K, D+1) dλ
  LeafSoftScratch soft{}; // fff_leaf
};

// train: lay out what a training forward keeps (fff_leaf's soft mixture).
void for_each_mlp_act(MlpActs& a, const MlpShape& s, int64_t M, bool train,
                      const std::function<void(float*&, size_t)>& f);
void for_each_mlp_scratch(MlpScratch& sc, const MlpShape& s, int64_t M,
                          const std::function<void(float*&, size_t)>& f);

// x, y (M, C): y = MLP(x) (overwritten). Not called for MlpKind::none. Returns the
// weighted auxiliary loss this forward adds to the objective: fff_leaf's hardening
// (fff.hardening × the mean router entropy) in training, else 0. A training forward
// needs the buffers laid out with train = true.
double mlp_forward(const MlpShape& s, const ForwardMode& mode, const MlpWeights& w, MlpActs& a, float* y,
                   const float* x, int64_t M, int64_t C);
// After a training forward: dy (M, C) → dx (M, C) (overwritten); weight gradients
// accumulate into dw. aux_scale: the scale of the auxiliary losses (fff_leaf's
// hardening, weighted by fff.hardening) in the loss being differentiated.
void mlp_backward(const MlpShape& s, const MlpWeights& w, const MlpWeights& dw, const MlpActs& a,
                  MlpScratch& sc, float* dx, const float* dy, const float* x, int64_t M, int64_t C,
                  float aux_scale);

// After an inference forward of `tokens` tokens, adds their visits to counts: fff,
// (K·N) tokens reaching each neuron; fff_leaf, (K·L) tokens reaching each leaf.
int64_t visit_counters(const MlpShape& s);  // the size of counts (0: not a tree)
void count_tree_visits(const MlpShape& s, const MlpActs& a, int64_t tokens, int64_t* counts);
// The fraction of leaves (fff: the 2^D last-level neurons of each tree) with a visit.
double leaves_used(const MlpShape& s, const int64_t* counts);

// The MLP's parameters (names relative to the block, "mlp.fc.weight", ...; its norm
// belongs to the block), with their views in w.
void for_each_mlp_param(const MlpShape& s, int64_t C, MlpWeights& w, const ParamVisitor& f);

}  // namespace fw
