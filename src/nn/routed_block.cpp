#include "nn/routed_block.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/matmul.h"
#include "kernels/vec_math.h"

namespace fw {

namespace {

float gate_grad(Gate g, float r) {
  if (g == Gate::raw) return 1.0f;
  if (g == Gate::one) return 0.0f;
  const float s = vsigmoid(r);
  return s * (1.0f - s);
}
// BCE of σ(z) against t, from the logit, stable for large |z|
double bce_with_logit(float z, float t) {
  return std::max(z, 0.0f) - z * t + std::log1p(std::exp(-std::fabs(z)));
}
float silu(float h) { return h * vsigmoid(h); }
float silu_grad(float h) {
  const float s = vsigmoid(h);
  return s * (1.0f + h * (1.0f - s));
}

// The inner block's shape: (B, k = mod.k(T)). An encoder's padded row b selects only
// k_b = mod.k(its real tokens) ≤ k; its inner row is then padded too, to k_b (the
// lengths a forward left in RoutedActs::inner_lengths).
BlockDims selected_dims(const BlockDims& d, const ModConfig& mod, const RoutedActs& a) {
  BlockDims k = d;
  k.T = mod.k(d.T);
  k.mask.lengths = d.mask.lengths ? a.inner_lengths.data() : nullptr;
  return k;
}

// Real tokens of row b: an encoder's padded row has fewer than T.
int64_t real_length(const BlockDims& d, int64_t b) { return d.mask.lengths ? d.mask.lengths[b] : d.T; }

// Whether token i of the (B,T) batch is real (not padding).
bool real_token(const BlockDims& d, int64_t i) { return i % d.T < real_length(d, i / d.T); }

// Whether slot i of the inner (B, k) batch holds a selected token (not padding).
bool real_slot(const RoutedActs& a, int64_t i, int64_t k) { return i % k < a.inner_lengths[size_t(i / k)]; }

}  // namespace

void for_each_router_param(const ModConfig& mod, int64_t P, int64_t C, RouterWeights& w,
                           const ParamVisitor& f) {
  const double c = double(C), p = double(P);
  f({"router.weight", {C}, false, Init::normal, FlopTerm::router, c, c}, w.router, nullptr);
  if (!mod.predictor()) return;
  w.pred_hidden = P;
  f({"predictor.fc.weight", {P, C}, true, Init::normal, FlopTerm::predictor, p * c, p * c}, w.pred_fc, nullptr);
  f({"predictor.fc.bias", {P}, false, Init::zeros}, w.pred_fc_b, nullptr);
  f({"predictor.out.weight", {1, P}, true, Init::normal, FlopTerm::predictor, p, p}, w.pred_out, nullptr);
  f({"predictor.out.bias", {1}, false, Init::zeros}, w.pred_out_b, nullptr);
}

float gate_value(Gate g, float r) { return g == Gate::raw ? r : g == Gate::sigmoid ? vsigmoid(r) : 1.0f; }

void router_logits(float* r, const float* x, const float* w_r, int64_t n, int64_t C) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t c = 0; c < C; c++) acc += x[i * C + c] * w_r[c];
    r[i] = acc;
  }
}

void predictor_logits(float* p, float* h, const float* x, const RouterWeights& rw, int64_t n,
                      int64_t C) {
  const int64_t P = rw.pred_hidden;
  matmul_forward(h, x, rw.pred_fc, n, C, P);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float z = rw.pred_out_b[0];
    for (int64_t j = 0; j < P; j++) {
      h[i * P + j] += rw.pred_fc_b[j];
      z += rw.pred_out[j] * silu(h[i * P + j]);
    }
    p[i] = z;
  }
}

void causal_route(uint8_t* processed, const float** decider, float* r, float* pred_p, float* pred_h,
                  const float* x, const RouterWeights& rw, const ModConfig& mod, float threshold,
                  int64_t n, int64_t C) {
  router_logits(r, x, rw.router, n, C);
  const bool by_predictor = mod.decides_by_predictor();
  if (by_predictor) predictor_logits(pred_p, pred_h, x, rw, n, C);
  const float* decide = by_predictor ? pred_p : r;
  for (int64_t i = 0; i < n; i++) processed[i] = decide[i] > threshold;
  *decider = decide;
}

void for_each_routed_act(RoutedActs& a, const BlockDims& d, const ModConfig& mod, int64_t P,
                         bool backward, const std::function<void(float*&, size_t)>& f) {
  const BlockDims dk = selected_dims(d, mod, a);
  const size_t BT = size_t(d.B * d.T), Bk = size_t(dk.B * dk.T), C = size_t(d.C);
  for_each_block_act(a.inner, dk, dk.T, backward, f);
  f(a.r, BT);
  f(a.xs, Bk * C);
  f(a.ys, Bk * C);
  if (backward) {
    f(a.gs, Bk * C);
    f(a.dxs, Bk * C);
    f(a.dr, BT);
  }
  if (mod.predictor()) {
    f(a.pred_h, BT * size_t(P));
    f(a.pred_p, BT);
    if (backward) f(a.dpred_h, BT * size_t(P));
  }
  a.idx.resize(Bk);
  a.inner_lengths.assign(size_t(d.B), int32_t(dk.T));
  a.order.resize(BT);
  a.selected.resize(BT);
}

double routed_forward(const BlockDims& d, const ForwardMode& mode, const ModConfig& mod, Gate gate,
                      const BlockWeights& w,
                      const RouterWeights& rw, RoutedActs& a, BlockScratch& s, float* y,
                      const float* x, const RopeTable& rope) {
  const BlockDims dk = selected_dims(d, mod, a);
  const int64_t B = d.B, T = d.T, C = d.C, k = dk.T, BT = B * T;
  router_logits(a.r, x, rw.router, BT, C);
  // expert-choice top-k per sequence over its real tokens, then back into position
  // order; a padded row's unused slots repeat its first selected position (for RoPE;
  // its inner row's length masks them)
  std::fill(a.selected.begin(), a.selected.end(), 0);
  a.real_tokens = 0;
  for (int64_t b = 0; b < B; b++) {
    const int64_t n = real_length(d, b), kb = d.mask.lengths ? mod.k(n) : k;
    a.inner_lengths[size_t(b)] = int32_t(kb);
    a.real_tokens += n;
    int32_t* ord = a.order.data() + b * T;
    const float* rb = a.r + b * T;
    for (int64_t t = 0; t < n; t++) ord[t] = int32_t(t);
    std::partial_sort(ord, ord + kb, ord + n, [&](int32_t i, int32_t j) {
      return rb[i] > rb[j] || (rb[i] == rb[j] && i < j);
    });
    std::sort(ord, ord + kb);
    for (int64_t j = 0; j < k; j++) a.idx[size_t(b * k + j)] = ord[j < kb ? j : 0];
    for (int64_t j = 0; j < kb; j++) a.selected[size_t(b * T + ord[j])] = 1;
  }
  // the block on the selected tokens only; their positions are their original ones
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < B * k; i++)
    std::memcpy(a.xs + i * C, x + ((i / k) * T + a.idx[size_t(i)]) * C, size_t(C) * 4);
  const double hardening =  // fff_leaf's auxiliary loss (else 0)
      block_forward(dk, mode, w, a.inner, s, a.ys, a.xs, a.idx.data(), rope, KvSlot{a.inner.k, a.inner.v, k}, k);
  // y = x everywhere; selected tokens add g(r)·Δ with Δ = block(x) − x
  std::memcpy(y, x, size_t(BT * C) * 4);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < B * k; i++) {
    if (!real_slot(a, i, k)) continue;
    const int64_t row = (i / k) * T + a.idx[size_t(i)];
    add_gated_update(y + row * C, a.xs + i * C, a.ys + i * C, gate_value(gate, a.r[row]), C);
  }
  // auxiliary losses and how well each causal decision matches top-k, over real tokens
  double rb = 0, pb = 0, racc = 0, pacc = 0;
  if (mod.predictor()) predictor_logits(a.pred_p, a.pred_h, x, rw, BT, C);
  for (int64_t i = 0; i < BT; i++) {
    if (!real_token(d, i)) continue;
    const float t = a.selected[size_t(i)];
    rb += bce_with_logit(a.r[i], t);
    racc += (a.r[i] > 0) == (t > 0);
    if (mod.predictor()) {
      pb += bce_with_logit(a.pred_p[i], t);
      pacc += (a.pred_p[i] > 0) == (t > 0);
    }
  }
  const double n = double(a.real_tokens);
  a.router_bce = rb / n;
  a.router_accuracy = racc / n;
  a.predictor_bce = pb / n;
  a.predictor_accuracy = pacc / n;
  return (mod.router_bce() ? mod.bce_weight * a.router_bce : 0.0) +
         (mod.predictor() ? mod.predictor_weight * a.predictor_bce : 0.0) + hardening;
}

void routed_backward(const BlockDims& d, const ModConfig& mod, Gate gate, const BlockWeights& w,
                     const RouterWeights& rw, const BlockWeights& dw, const RouterWeights& drw,
                     RoutedActs& a, BlockScratch& s, float* dres, const float* x,
                     const RopeTable& rope, float aux_scale) {
  const BlockDims dk = selected_dims(d, mod, a);
  const int64_t B = d.B, T = d.T, C = d.C, k = dk.T, BT = B * T;
  // the router BCE's gradient at every real token
  const float rw_bce = mod.router_bce() ? aux_scale * float(mod.bce_weight) / float(a.real_tokens) : 0.0f;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < BT; i++)
    a.dr[i] = real_token(d, i) ? rw_bce * (vsigmoid(a.r[i]) - float(a.selected[size_t(i)])) : 0.0f;
  // selected tokens: y = x + g(r)·(ys − xs) with ys = block(xs); a padded inner slot
  // has no output, so no gradient
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < B * k; i++) {
    if (!real_slot(a, i, k)) {
      std::fill_n(a.gs + i * C, C, 0.0f);
      std::fill_n(a.dxs + i * C, C, 0.0f);
      continue;
    }
    const int64_t row = (i / k) * T + a.idx[size_t(i)];
    const float g = gate_value(gate, a.r[row]);
    float dot = 0;  // <Δ, ∂L/∂y>
    for (int64_t c = 0; c < C; c++) {
      const float gy = dres[row * C + c];
      a.gs[i * C + c] = gy;
      a.dxs[i * C + c] = g * gy;  // ∂L/∂ys
      dot += (a.ys[i * C + c] - a.xs[i * C + c]) * gy;
    }
    a.dr[row] += gate_grad(gate, a.r[row]) * dot;
  }
  block_backward(dk, w, dw, a.inner, s, a.dxs, a.xs, a.idx.data(), rope, aux_scale);  // dxs: ∂L/∂xs via the block
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < B * k; i++) {
    if (!real_slot(a, i, k)) continue;
    const int64_t row = (i / k) * T + a.idx[size_t(i)];
    const float g = gate_value(gate, a.r[row]);
    for (int64_t c = 0; c < C; c++) dres[row * C + c] += a.dxs[i * C + c] - g * a.gs[i * C + c];
  }
  // router: r = w_r·x, so ∂L/∂x += dr·w_r and ∂L/∂w_r += Σ dr·x
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < BT; i++)
    for (int64_t c = 0; c < C; c++) dres[i * C + c] += a.dr[i] * rw.router[c];
#pragma omp parallel
  {  // each thread owns a column range: deterministic sums in row order
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t c0 = C * t / nt, c1 = C * (t + 1) / nt;
    for (int64_t i = 0; i < BT; i++)
      for (int64_t c = c0; c < c1; c++) drw.router[c] += a.dr[i] * x[i * C + c];
  }
  // predictor: trains on its own BCE; no gradient flows into x (stop-gradient)
  if (mod.predictor()) {
    const int64_t P = rw.pred_hidden;
    const float pw = aux_scale * float(mod.predictor_weight) / float(a.real_tokens);
    for (int64_t i = 0; i < BT; i++) {
      const float dz = real_token(d, i) ? pw * (vsigmoid(a.pred_p[i]) - float(a.selected[size_t(i)])) : 0.0f;
      drw.pred_out_b[0] += dz;
      for (int64_t p = 0; p < P; p++) {
        const float h = a.pred_h[i * P + p];
        drw.pred_out[p] += dz * silu(h);
        const float dh = dz * rw.pred_out[p] * silu_grad(h);
        a.dpred_h[i * P + p] = dh;
        drw.pred_fc_b[p] += dh;
      }
    }
    matmul_backward(nullptr, drw.pred_fc, a.dpred_h, x, rw.pred_fc, BT, C, P);
  }
}

}  // namespace fw
