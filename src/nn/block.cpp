#include "nn/block.h"

#include <cstring>

#include "core/threads.h"
#include "kernels/attention.h"
#include "nn/linear.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"

namespace fw {

void RopeTable::build(int64_t n, int64_t hd) {
  npos = n;
  cos.resize(size_t(n * hd / 2));
  sin.resize(size_t(n * hd / 2));
  rope_table(cos.data(), sin.data(), n, hd);
}

void for_each_block_param(const MlpShape& mlp, int64_t C, BlockWeights& w, const ParamVisitor& f) {
  const double cc = double(C) * double(C);
  f({"attn_norm.weight", {C}, false, Init::ones}, w.attn_norm, nullptr);
  f({"attn.qkv.weight", {3 * C, C}, true, Init::normal, FlopTerm::attn_qkv, 3 * cc, 3 * cc}, w.qkv, &w.qkv16);
  f({"attn.out.weight", {C, C}, true, Init::residual, FlopTerm::attn_out, cc, cc}, w.out, &w.out16);
  if (mlp.kind == MlpKind::none) return;
  f({"mlp_norm.weight", {C}, false, Init::ones}, w.mlp_norm, nullptr);
  for_each_mlp_param(mlp, C, w.mlp, f);
}

void for_each_block_act(BlockActs& a, const BlockDims& d, int64_t Tk, bool train,
                        const std::function<void(float*&, size_t)>& f) {
  const size_t BT = size_t(d.B * d.T), C = size_t(d.C);
  f(a.ln1, BT * C);
  f(a.rstd1, BT);
  f(a.q, BT * C);
  f(a.k, BT * C);
  f(a.v, BT * C);
  f(a.P, size_t(d.B * d.H * d.T * Tk));
  f(a.atty, BT * C);
  f(a.h, BT * C);
  f(a.ln2, BT * C);
  f(a.rstd2, BT);
  for_each_mlp_act(a.mlp, d.mlp, d.B * d.T, train, f);
}

void for_each_block_scratch(BlockScratch& s, const BlockDims& d, bool backward,
                            const std::function<void(float*&, size_t)>& f) {
  const size_t BT = size_t(d.B * d.T), C = size_t(d.C);
  f(s.qkv, BT * 3 * C);
  if (!backward) return;
  f(s.datty, BT * C);
  f(s.dq, BT * C);
  f(s.dk, BT * C);
  f(s.dv, BT * C);
  for_each_mlp_scratch(s.mlp, d.mlp, d.B * d.T, f);
  f(s.dnorm, BT * C);
  f(s.dattn, size_t(num_threads()) * size_t(d.T * d.T));
}

double block_forward(const BlockDims& d, const ForwardMode& mode, const BlockWeights& w, BlockActs& a,
                     BlockScratch& s, float* y, const float* x, const int32_t* pos, const RopeTable& rope,
                     const KvSlot& kv, int64_t ldp) {
  const AttentionGroup all{d.B, d.T, kv};
  return block_forward_groups(d, mode, w, a, s, y, x, pos, rope, &all, 1, ldp);
}

double block_forward_groups(const BlockDims& d, const ForwardMode& mode, const BlockWeights& w, BlockActs& a,
                            BlockScratch& s, float* y, const float* x, const int32_t* pos, const RopeTable& rope,
                            const AttentionGroup* groups, int64_t G, int64_t ldp) {
  const int64_t BT = d.B * d.T, C = d.C;
  // attention sub-block: the projection over every token, then each group's rotation
  // and attention on its own tokens (q and atty hold the groups one after another;
  // each group's probabilities reuse the start of P)
  rmsnorm_forward(a.ln1, a.rstd1, x, w.attn_norm, BT, C);
  linear_forward(s.qkv, a.ln1, w.qkv, w.qkv16, BT, C, 3 * C, w.qkv_packed);
  for (int64_t g = 0, at = 0; g < G; at += groups[g].B * groups[g].T, g++) {
    const AttentionGroup& gr = groups[g];
    rope_split_forward(a.q + at * C, gr.kv, s.qkv + at * 3 * C, pos + at, rope.cos.data(), rope.sin.data(), gr.B,
                       gr.T, d.H, d.hd());
    attention_forward(a.atty + at * C, a.P, a.q + at * C, gr.kv, gr.B, d.H, gr.T, d.hd(), ldp, d.mask);
  }
  linear_forward(a.h, a.atty, w.out, w.out16, BT, C, C, w.out_packed);
#pragma omp parallel for simd schedule(static) if (BT * C >= kParallelFloats)
  for (int64_t i = 0; i < BT * C; i++) a.h[i] += x[i];
  // MLP sub-block
  if (d.mlp.kind == MlpKind::none) {
    std::memcpy(y, a.h, size_t(BT * C) * sizeof(float));
    return 0;
  }
  rmsnorm_forward(a.ln2, a.rstd2, a.h, w.mlp_norm, BT, C);
  const double aux = mlp_forward(d.mlp, mode, w.mlp, a.mlp, y, a.ln2, BT, C);
#pragma omp parallel for simd schedule(static) if (BT * C >= kParallelFloats)
  for (int64_t i = 0; i < BT * C; i++) y[i] += a.h[i];
  return aux;
}

void block_backward(const BlockDims& d, const BlockWeights& w, const BlockWeights& dw,
                    const BlockActs& a, BlockScratch& s, float* dres, const float* x,
                    const int32_t* pos, const RopeTable& rope, float aux_scale) {
  const int64_t BT = d.B * d.T, C = d.C;
  // MLP: y = h + mlp(norm(h));  dres holds ∂L/∂y and becomes ∂L/∂h.
  if (d.mlp.kind != MlpKind::none) {
    mlp_backward(d.mlp, w.mlp, dw.mlp, a.mlp, s.mlp, s.dnorm, dres, a.ln2, BT, C, aux_scale);
    rmsnorm_backward(dres, dw.mlp_norm, s.dnorm, a.h, w.mlp_norm, a.rstd2, BT, C);
  }
  // attention: h = x + out(attn(norm(x)));  dres becomes ∂L/∂x.
  linear_backward(s.datty, dw.out, dres, a.atty, w.out, w.out16, BT, C, C);
  attention_backward(s.dq, s.dk, s.dv, s.dattn, s.datty, a.P, a.q, a.k, a.v, d.B, d.H, d.T,
                     d.hd(), d.mask);
  rope_split_backward(s.qkv, s.dq, s.dk, s.dv, pos, rope.cos.data(), rope.sin.data(), d.B, d.T,
                      d.H, d.hd());
  linear_backward(s.dnorm, dw.qkv, s.qkv, a.ln1, w.qkv, w.qkv16, BT, C, 3 * C);
  rmsnorm_backward(dres, dw.attn_norm, s.dnorm, x, w.attn_norm, a.rstd1, BT, C);
}

}  // namespace fw
