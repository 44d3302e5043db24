// A pre-norm transformer block as a hand-written forward/backward pair:
//   h = x + Attn(RMSNorm(x)),   y = h + MLP(RMSNorm(h))
// Attn: fused QKV projection, rotary on q and k, softmax attention (causal, or
// bidirectional in an encoder), output projection. MLP: the form model.mlp chooses
// (nn/mlp.h); with mlp = none the block is y = h, its MLP norm included.
#pragma once
#include <cstdint>
#include <functional>

#include "core/buffer.h"
#include "kernels/attention.h"
#include "kernels/kv_slot.h"
#include "nn/mlp.h"

namespace fw {

struct BlockDims {
  int64_t B, T, C, H;  // batch, tokens per row, width, heads
  MlpShape mlp;
  AttentionMask mask;  // causal (decoder), or bidirectional over each row's real tokens (encoder)
  int64_t hd() const { return C / H; }
  static BlockDims of(const ModelConfig& c, int64_t B, int64_t T) {
    return {B, T, c.d_model, c.n_heads, c.mlp_shape(), AttentionMask{!c.encoder(), nullptr}};
  }
};

// Views into the flat parameter (or gradient) buffer, and, in bf16 mode, into the
// bf16 copy of the parameters (null otherwise).
struct BlockWeights {
  float* attn_norm = nullptr;  // (C)
  float* qkv = nullptr;        // (3C, C)
  float* out = nullptr;        // (C, C)
  float* mlp_norm = nullptr;   // (C); null with mlp = none
  MlpWeights mlp;
  const uint16_t *qkv16 = nullptr, *out16 = nullptr;
  const PackedMatrix *qkv_packed = nullptr, *out_packed = nullptr;  // decoding's packed copies
};

// The block's parameters (names relative to the block): the attention's norm and
// projections, then the MLP's norm and the MLP (nn/mlp.h).
void for_each_block_param(const MlpShape& mlp, int64_t C, BlockWeights& w, const ParamVisitor& f);

// What the forward keeps for the backward, per block.
struct BlockActs {
  float* ln1;    // (B,T,C)   RMSNorm(x)
  float* rstd1;  // (B,T)
  float* q;      // (B,H,T,hd) rotated queries
  float* k;      // (B,H,T,hd) rotated keys   (training's own "cache")
  float* v;      // (B,H,T,hd)
  float* P;      // (B,H,T,Tk) attention probabilities
  float* atty;   // (B,T,C)   attention output before projection
  float* h;      // (B,T,C)   residual after attention
  float* ln2;    // (B,T,C)
  float* rstd2;  // (B,T)
  MlpActs mlp;
};

// Scratch shared by all blocks (one live block at a time).
struct BlockScratch {
  float* qkv;     // (B,T,3C)
  float* datty;   // (B,T,C)
  float* dq;      // (B,H,T,hd)
  float* dk;      // (B,H,T,hd)
  float* dv;      // (B,H,T,hd)
  MlpScratch mlp;
  float* dnorm;   // (B,T,C)   gradient at a norm's output
  float* dattn;   // (threads,T,T)
};

// Rotary angle table for positions 0..npos-1.
struct RopeTable {
  Buffer cos, sin;  // (npos, hd/2)
  int64_t npos = 0;
  void build(int64_t npos, int64_t hd);
};

// Visit every activation buffer with its size; called once to size an arena and
// once to carve it, so the two can never disagree. Tk: keys per query row in P.
// train: also what a training forward keeps (fff_leaf's soft mixture).
void for_each_block_act(BlockActs& a, const BlockDims& d, int64_t Tk, bool train,
                        const std::function<void(float*&, size_t)>& f);
void for_each_block_scratch(BlockScratch& s, const BlockDims& d, bool backward,
                            const std::function<void(float*&, size_t)>& f);

// x, y (B,T,C); pos (B,T) the tokens' positions (rotation angles). kv: where the
// keys and values go (training: the block's own a.k, a.v, KvSlot{a.k, a.v, T}).
// ldp: keys per row of a.P (training: T; decoding: the cache capacity). Returns the
// MLP's weighted auxiliary loss (nn/mlp.h).
double block_forward(const BlockDims& d, const ForwardMode& mode, const BlockWeights& w, BlockActs& a,
                     BlockScratch& s, float* y, const float* x, const int32_t* pos, const RopeTable& rope,
                     const KvSlot& kv, int64_t ldp);

// Tokens that attend as B sequences × T tokens each (b-major), with the slot their
// keys and values go to. A decoding forward may hold several groups one after another
// (the decoding sequences' new tokens beside a prompt's chunk): block_forward_groups
// runs the norms, products and MLP over all their tokens at once, and the rotation and
// attention group by group.
struct AttentionGroup {
  int64_t B, T;
  KvSlot kv;
};
// d: the dimensions of all the groups' tokens together (d.B · d.T of them, in group
// order); groups (G): how they attend. block_forward is the one-group case.
double block_forward_groups(const BlockDims& d, const ForwardMode& mode, const BlockWeights& w, BlockActs& a,
                            BlockScratch& s, float* y, const float* x, const int32_t* pos, const RopeTable& rope,
                            const AttentionGroup* groups, int64_t G, int64_t ldp);

// dres (B,T,C): in = ∂L/∂y, out = ∂L/∂x. Weight gradients accumulate into dw.
// aux_scale: the scale of the MLP's auxiliary loss (fff_leaf hardening) in the loss.
void block_backward(const BlockDims& d, const BlockWeights& w, const BlockWeights& dw,
                    const BlockActs& a, BlockScratch& s, float* dres, const float* x,
                    const int32_t* pos, const RopeTable& rope, float aux_scale);

}  // namespace fw
