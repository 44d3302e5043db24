#include "nn/mlp.h"

#include "kernels/fff.h"
#include "kernels/gelu.h"
#include "nn/linear.h"

namespace fw {

static TreeShape tree(const MlpShape& s, int64_t C) { return {s.K, s.D, C}; }

void for_each_mlp_act(MlpActs& a, const MlpShape& s, int64_t M, const std::function<void(float*&, size_t)>& f) {
  switch (s.kind) {
    case MlpKind::dense:
      f(a.fc, size_t(M * s.F));
      f(a.g, size_t(M * s.F));
      break;
    case MlpKind::fff:
      f(a.path, size_t(M * s.K * (s.D + 1)));
      f(a.lam, size_t(M * s.K * (s.D + 1)));
      break;
    default: break;
  }
}

void for_each_mlp_scratch(MlpScratch& sc, const MlpShape& s, int64_t M,
                          const std::function<void(float*&, size_t)>& f) {
  switch (s.kind) {
    case MlpKind::dense: f(sc.dh, size_t(M * s.F)); break;
    case MlpKind::fff: f(sc.dh, size_t(M * s.K * (s.D + 1))); break;
    default: break;
  }
}

void mlp_forward(const MlpShape& s, const MlpWeights& w, MlpActs& a, float* y, const float* x, int64_t M,
                 int64_t C) {
  switch (s.kind) {
    case MlpKind::dense:
      linear_forward(a.fc, x, w.fc, w.fc16, M, C, s.F);
      gelu_forward(a.g, a.fc, M * s.F);
      linear_forward(y, a.g, w.proj, w.proj16, M, s.F, C);
      break;
    case MlpKind::fff:
      fff_forward(y, a.path, a.lam, x, w.w_in, w.b_in, w.w_out, tree(s, C), M);
      break;
    default: break;
  }
}

void mlp_backward(const MlpShape& s, const MlpWeights& w, const MlpWeights& dw, const MlpActs& a,
                  MlpScratch& sc, float* dx, const float* dy, const float* x, int64_t M, int64_t C) {
  switch (s.kind) {
    case MlpKind::dense:
      linear_backward(sc.dh, dw.proj, dy, a.g, w.proj, w.proj16, M, s.F, C);
      gelu_backward(sc.dh, sc.dh, a.fc, M * s.F);
      linear_backward(dx, dw.fc, sc.dh, x, w.fc, w.fc16, M, C, s.F);
      break;
    case MlpKind::fff:
      fff_backward(dx, dw.w_in, dw.b_in, dw.w_out, sc.dh, dy, x, a.path, a.lam, w.w_in, w.w_out, tree(s, C), M);
      break;
    default: break;
  }
}

void count_tree_visits(const MlpShape& s, const float* path, int64_t tokens, int64_t* counts) {
  const int64_t P = s.D + 1, N = s.tree_nodes();
  for (int64_t v = 0; v < tokens * s.K * P; v++) counts[((v / P) % s.K) * N + int64_t(path[v])]++;
}

double leaves_used(const MlpShape& s, const int64_t* counts) {
  const int64_t N = s.tree_nodes(), first_leaf = N / 2;  // heap order: the last level
  int64_t used = 0;
  for (int64_t k = 0; k < s.K; k++)
    for (int64_t n = first_leaf; n < N; n++) used += counts[k * N + n] > 0;
  return double(used) / double(s.K * (N - first_leaf));
}

int64_t mlp_params(const MlpShape& s, int64_t C) {
  switch (s.kind) {
    case MlpKind::dense: return 2 * s.F * C;
    case MlpKind::fff: return s.K * s.tree_nodes() * (2 * C + 1);
    default: return 0;
  }
}

}  // namespace fw
