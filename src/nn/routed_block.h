// A Mixture-of-Depths routed block (Raposo et al. 2024), as a forward/backward pair.
//   r = x·w_r per token; the k = max(1, round(c·T)) tokens of each sequence with the
//   largest r are selected (ties to the earlier token) and kept in position order;
//   the dense block runs on those k tokens only, with their ORIGINAL positions for
//   rotary and causality; y_i = x_i + g(r_i)·(block(x)_i − x_i) for selected tokens,
//   y_i = x_i for the rest. g puts the router on the gradient path.
// Auxiliary losses teach sampling to decide causally (top-k over a sequence is not
// causal): a BCE on σ(r) against "was selected" (trains the router), and a small
// predictor MLP d → P → 1 on the block input with its input gradient stopped.
// An encoder's padded rows (BlockDims::mask.lengths) select among their real tokens
// only, k_b = max(1, round(c·n_b)) of n_b; the auxiliary losses are over real tokens.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "nn/block.h"
#include "nn/config.h"

namespace fw {

// A routed block's own parameters, beside its BlockWeights.
struct RouterWeights {
  float* router = nullptr;      // (C)    r = w · x
  float* pred_fc = nullptr;     // (P, C) causal predictor: d → P → 1, SiLU
  float* pred_fc_b = nullptr;   // (P)
  float* pred_out = nullptr;    // (1, P)
  float* pred_out_b = nullptr;  // (1)
  int64_t pred_hidden = 0;      // P
};

// The router's (and, with mod.predictor(), the predictor's) parameters, names relative
// to the block; P the predictor's hidden width.
void for_each_router_param(const ModConfig& mod, int64_t P, int64_t C, RouterWeights& w,
                           const ParamVisitor& f);

// g(r) for the gate (nn/config.h).
float gate_value(Gate g, float r);

// y (C) += g · (ys − xs): a processed token's output is its input plus the gated
// update; the residual itself is never scaled. Training and decoding both use this.
inline void add_gated_update(float* y, const float* xs, const float* ys, float g, int64_t C) {
  for (int64_t c = 0; c < C; c++) y[c] += g * (ys[c] - xs[c]);
}

// r (n) = x (n,C) · w_r: one router logit per token.
void router_logits(float* r, const float* x, const float* w_r, int64_t n, int64_t C);
// p (n): the causal predictor's logits, with h (n,P) its hidden pre-activations.
void predictor_logits(float* p, float* h, const float* x, const RouterWeights& rw, int64_t n,
                      int64_t C);

// Decoding's routing. Top-k over a sequence needs its future, so sampling decides token
// by token: a token is processed when its decider's logit is above a threshold, the
// decider being the predictor when it is the only remedy trained
// (mod.decides_by_predictor()), else the router. The trained rule's threshold is 0
// (σ > 0.5), whose accuracy against top-k training measures (RoutedActs::router_accuracy,
// predictor_accuracy); nothing in training makes it process the capacity's share of
// tokens, so a calibrated threshold (CausalCalibration) can replace it.
// x (n,C) → r (n) router logits, decider (n) the logits compared, processed (n);
// pred_p (n), pred_h (n,P) predictor scratch (decider points at r or pred_p).
void causal_route(uint8_t* processed, const float** decider, float* r, float* pred_p, float* pred_h,
                  const float* x, const RouterWeights& rw, const ModConfig& mod, float threshold,
                  int64_t n, int64_t C);

// Per-layer thresholds for causal_route, chosen so that each routed block processes the
// capacity's share of tokens of some calibration text (infer/calibration.h). Stored in
// the checkpoint; empty when the model was never calibrated.
struct CausalCalibration {
  std::vector<float> threshold;  // (n_layers): 0 in unrouted layers
  int64_t tokens = 0;            // tokens of the calibration text
  bool empty() const { return threshold.empty(); }
};

struct RoutedActs {
  BlockActs inner;  // the dense block on the selected tokens, shape (B, k)
  float* r;         // (B,T)   router logits
  float* xs;        // (B,k,C) selected inputs
  float* ys;        // (B,k,C) the block's outputs for them
  float* gs;        // (B,k,C) backward: ∂L/∂y at the selected tokens
  float* dxs;       // (B,k,C) backward: gradient through the block
  float* dr;        // (B,T)   backward: ∂L/∂r
  float* pred_h;    // (B,T,P) predictor hidden pre-activation (predictor only)
  float* pred_p;    // (B,T)   predictor logits
  float* dpred_h;   // (B,T,P) backward
  std::vector<int32_t> idx;       // (B,k) selected positions, ascending (a padded row's unused slots: its first)
  std::vector<int32_t> inner_lengths;  // (B) selected tokens per row: k, or mod.k(real tokens) of a padded row
  int64_t real_tokens = 0;        // tokens of the (B,T) batch that are not padding
  std::vector<int32_t> order;     // (B,T) top-k scratch
  std::vector<uint8_t> selected;  // (B,T) the BCE targets
  // this forward's auxiliary losses (unweighted means over the real tokens) and accuracies of
  // the causal decisions (σ(r) > 0.5, predictor > 0.5) against top-k
  double router_bce = 0, predictor_bce = 0, router_accuracy = 0, predictor_accuracy = 0;
};

// Visit every float buffer (for sizing and carving the arena) and size the int ones.
void for_each_routed_act(RoutedActs& a, const BlockDims& d, const ModConfig& mod, int64_t P,
                         bool backward, const std::function<void(float*&, size_t)>& f);

// x, y (B,T,C). Returns the weighted auxiliary loss (bce_weight·router BCE +
// predictor_weight·predictor BCE, and the MLP's own) this block adds to the objective.
double routed_forward(const BlockDims& d, const ForwardMode& mode, const ModConfig& mod, Gate gate,
                      const BlockWeights& w,
                      const RouterWeights& rw, RoutedActs& a, BlockScratch& s, float* y,
                      const float* x, const RopeTable& rope);

// dres (B,T,C): in ∂L/∂y, out ∂L/∂x. Weight gradients accumulate. aux_scale scales
// the auxiliary losses' gradients like the LM loss's (1 / grad_accum).
void routed_backward(const BlockDims& d, const ModConfig& mod, Gate gate, const BlockWeights& w,
                     const RouterWeights& rw, const BlockWeights& dw, const RouterWeights& drw,
                     RoutedActs& a, BlockScratch& s, float* dres, const float* x,
                     const RopeTable& rope, float aux_scale);

}  // namespace fw
