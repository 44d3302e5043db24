#include "nn/mlp.h"

#include "kernels/fff.h"
#include "kernels/gelu.h"
#include "nn/linear.h"

namespace fw {

static TreeShape tree(const MlpShape& s, int64_t C) { return {s.K, s.D, C}; }
static LeafShape leaf_shape(const MlpShape& s, int64_t C) { return {s.K, s.D, s.leaf, C}; }
static LeafWeights leaf_weights(const MlpWeights& w) { return {w.r_w, w.r_b, w.w1, w.b1, w.w2, w.b2}; }

void for_each_mlp_act(MlpActs& a, const MlpShape& s, int64_t M, bool train,
                      const std::function<void(float*&, size_t)>& f) {
  switch (s.kind) {
    case MlpKind::dense:
      f(a.fc, size_t(M * s.F));
      f(a.g, size_t(M * s.F));
      break;
    case MlpKind::fff:
      f(a.path, size_t(M * s.K * (s.D + 1)));
      f(a.lam, size_t(M * s.K * (s.D + 1)));
      break;
    case MlpKind::fff_leaf: {
      const size_t KR = size_t(s.K * s.routers()), KL = size_t(s.K * s.leaves()), m = size_t(M);
      f(a.leaf, m * size_t(s.K));
      f(a.hidden, m * size_t(s.K * s.leaf));
      if (!train) break;
      f(a.soft.logits, m * KR);
      f(a.soft.flip, m * KR);
      f(a.soft.prob, m * (2 * KL - size_t(s.K)));
      f(a.soft.pl, m * KL);
      f(a.soft.h1, m * KL * size_t(s.leaf));
      f(a.soft.g, m * KL * size_t(s.leaf));
      f(a.soft.gs, m * KL * size_t(s.leaf));
      break;
    }
    default: break;
  }
}

void for_each_mlp_scratch(MlpScratch& sc, const MlpShape& s, int64_t M,
                          const std::function<void(float*&, size_t)>& f) {
  switch (s.kind) {
    case MlpKind::dense: f(sc.dh, size_t(M * s.F)); break;
    case MlpKind::fff: f(sc.dh, size_t(M * s.K * (s.D + 1))); break;
    case MlpKind::fff_leaf: {
      const size_t KL = size_t(s.K * s.leaves()), m = size_t(M);
      f(sc.soft.dgs, m * KL * size_t(s.leaf));
      f(sc.soft.dpl, m * KL);
      f(sc.soft.dprob, m * (2 * KL - size_t(s.K)));
      f(sc.soft.dlogit, m * size_t(s.K * s.routers()));
      break;
    }
    default: break;
  }
}

double mlp_forward(const MlpShape& s, const ForwardMode& mode, const MlpWeights& w, MlpActs& a, float* y,
                   const float* x, int64_t M, int64_t C) {
  switch (s.kind) {
    case MlpKind::dense:
      linear_forward(a.fc, x, w.fc, w.fc16, M, C, s.F, w.fc_packed);
      gelu_forward(a.g, a.fc, M * s.F);
      linear_forward(y, a.g, w.proj, w.proj16, M, s.F, C, w.proj_packed);
      break;
    case MlpKind::fff:
      if (w.w_in16)  // bf16 mode
        fff_forward(y, a.path, a.lam, x, w.w_in16, w.b_in, w.w_out16, tree(s, C), M);
      else
        fff_forward(y, a.path, a.lam, x, w.w_in, w.b_in, w.w_out, tree(s, C), M);
      break;
    case MlpKind::fff_leaf:
      if (mode.train)
        return s.hardening * leaf_soft_forward(y, a.soft, x, leaf_weights(w), leaf_shape(s, C), M,
                                               s.transpose_prob, mode.seed);
      leaf_hard_forward(y, a.leaf, a.hidden, x, leaf_weights(w), leaf_shape(s, C), M);
      break;
    default: break;
  }
  return 0;
}

void mlp_backward(const MlpShape& s, const MlpWeights& w, const MlpWeights& dw, const MlpActs& a,
                  MlpScratch& sc, float* dx, const float* dy, const float* x, int64_t M, int64_t C,
                  float aux_scale) {
  switch (s.kind) {
    case MlpKind::dense:
      linear_backward(sc.dh, dw.proj, dy, a.g, w.proj, w.proj16, M, s.F, C);
      gelu_backward(sc.dh, sc.dh, a.fc, M * s.F);
      linear_backward(dx, dw.fc, sc.dh, x, w.fc, w.fc16, M, C, s.F);
      break;
    case MlpKind::fff:
      if (w.w_in16)
        fff_backward(dx, dw.w_in, dw.b_in, dw.w_out, sc.dh, dy, x, a.path, a.lam, w.w_in16, w.w_out16, tree(s, C), M);
      else
        fff_backward(dx, dw.w_in, dw.b_in, dw.w_out, sc.dh, dy, x, a.path, a.lam, w.w_in, w.w_out, tree(s, C), M);
      break;
    case MlpKind::fff_leaf:
      leaf_soft_backward(dx, LeafGrads{dw.r_w, dw.r_b, dw.w1, dw.b1, dw.w2, dw.b2}, sc.soft, dy, x, a.soft,
                         leaf_weights(w), leaf_shape(s, C), M, aux_scale * float(s.hardening));
      break;
    default: break;
  }
}

int64_t visit_counters(const MlpShape& s) {
  if (s.kind == MlpKind::fff) return s.K * s.tree_nodes();
  if (s.kind == MlpKind::fff_leaf) return s.K * s.leaves();
  return 0;
}

void count_tree_visits(const MlpShape& s, const MlpActs& a, int64_t tokens, int64_t* counts) {
  if (s.kind == MlpKind::fff) {
    const int64_t P = s.D + 1, N = s.tree_nodes();
    for (int64_t v = 0; v < tokens * s.K * P; v++) counts[((v / P) % s.K) * N + int64_t(a.path[v])]++;
  } else if (s.kind == MlpKind::fff_leaf) {
    for (int64_t v = 0; v < tokens * s.K; v++) counts[(v % s.K) * s.leaves() + int64_t(a.leaf[v])]++;
  }
}

double leaves_used(const MlpShape& s, const int64_t* counts) {
  // fff: the leaves are each tree's last level (heap order); fff_leaf counts leaves only
  const int64_t per_tree = visit_counters(s) / s.K, first_leaf = s.kind == MlpKind::fff ? per_tree / 2 : 0;
  int64_t used = 0;
  for (int64_t k = 0; k < s.K; k++)
    for (int64_t n = first_leaf; n < per_tree; n++) used += counts[k * per_tree + n] > 0;
  return double(used) / double(s.K * (per_tree - first_leaf));
}

void for_each_mlp_param(const MlpShape& s, int64_t C, MlpWeights& w, const ParamVisitor& f) {
  const double c = double(C);
  switch (s.kind) {
    case MlpKind::dense: {  // every token meets all F neurons
      const double m = double(s.F) * c;
      f({"mlp.fc.weight", {s.F, C}, true, Init::normal, FlopTerm::mlp, m, m}, w.fc, &w.fc16);
      f({"mlp.proj.weight", {C, s.F}, true, Init::residual, FlopTerm::mlp, m, m}, w.proj, &w.proj16);
      break;
    }
    case MlpKind::fff: {  // K trees of N neurons in heap order; a token meets D+1 per tree
      const int64_t KN = s.K * s.tree_nodes();
      const double m = double(s.K * (s.D + 1)) * c;
      f({"mlp.fff.w_in", {KN, C}, true, Init::normal, FlopTerm::mlp, m, m}, w.w_in, &w.w_in16);
      f({"mlp.fff.b_in", {KN}, false, Init::zeros}, w.b_in, nullptr);
      f({"mlp.fff.w_out", {KN, C}, true, Init::residual, FlopTerm::mlp, m, m}, w.w_out, &w.w_out16);
      break;
    }
    case MlpKind::fff_leaf: {  // K trees: R routers and L leaves of l neurons each
      const int64_t KR = s.K * s.routers(), KL = s.K * s.leaves(), KLl = KL * s.leaf;
      // inference: the D routers on the path and one leaf; training: all of them (soft mixture)
      if (KR > 0) {
        f({"mlp.fff_leaf.router.weight", {KR, C}, true, Init::normal, FlopTerm::mlp, double(s.K * s.D) * c,
           double(KR) * c}, w.r_w, nullptr);
        f({"mlp.fff_leaf.router.bias", {KR}, false, Init::zeros}, w.r_b, nullptr);
      }
      const double one = double(s.K * s.leaf) * c, all = double(KLl) * c;
      f({"mlp.fff_leaf.w1", {KLl, C}, true, Init::normal, FlopTerm::mlp, one, all}, w.w1, nullptr);
      f({"mlp.fff_leaf.b1", {KLl}, false, Init::zeros}, w.b1, nullptr);
      f({"mlp.fff_leaf.w2", {KLl, C}, true, Init::residual, FlopTerm::mlp, one, all}, w.w2, nullptr);
      f({"mlp.fff_leaf.b2", {KL, C}, false, Init::zeros}, w.b2, nullptr);
      break;
    }
    default: break;
  }
}

}  // namespace fw
