// Finite-difference gradient checks.
// Layer level: each backward in src/kernels/reference.h against central differences
// in double precision (tight: 1e-6); the optimised kernels equal those references
// (test_kernels.cpp). Model level: the real float model's gradient, per parameter
// tensor, against directional central differences.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "core/rng.h"
#include "kernels/fff_leaf.h"
#include "kernels/reference.h"
#include "nn/model.h"
#include "test_util.h"

using namespace fw;

namespace {

std::vector<double> randn(size_t n, uint64_t seed, double sd = 1.0) { return test::randn<double>(n, seed, sd); }

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
  return s;
}

// Checks grad == ∂loss/∂x element by element (x is perturbed in place and restored).
// tol: 1e-6 for the double references; float kernels are checked at 1e-4.
template <typename G>
void expect_grad(const char* what, std::vector<double>& x, const std::vector<G>& grad,
                 const std::function<double()>& loss, double tol = 1e-6) {
  const double h = 1e-5;
  double worst = 0;
  for (size_t i = 0; i < x.size(); i++) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double lp = loss();
    x[i] = x0 - h;
    const double lm = loss();
    x[i] = x0;
    const double num = (lp - lm) / (2 * h);
    worst = std::max(worst, std::abs(num - double(grad[i])) / (1e-3 + std::abs(num)));
  }
  EXPECT_LT(worst, tol) << what;
}

}  // namespace

TEST(GradCheck, Matmul) {
  const int64_t M = 4, K = 5, N = 3;
  auto x = randn(M * K, 1), w = randn(N * K, 2), r = randn(M * N, 3);
  std::vector<double> y(M * N), dx(M * K), dw(N * K, 0.0);
  auto loss = [&] { ref::matmul_forward(y.data(), x.data(), w.data(), M, K, N); return dot(y, r); };
  ref::matmul_backward(dx.data(), dw.data(), r.data(), x.data(), w.data(), M, K, N);
  expect_grad("dx", x, dx, loss);
  expect_grad("dw", w, dw, loss);
}

TEST(GradCheck, RmsNorm) {
  const int64_t M = 3, C = 6;
  auto x = randn(M * C, 4), w = randn(C, 5), r = randn(M * C, 6);
  std::vector<double> y(M * C), rs(M), dx(M * C, 0.0), dw(C, 0.0);
  auto loss = [&] { ref::rmsnorm_forward(y.data(), rs.data(), x.data(), w.data(), M, C, 1e-5); return dot(y, r); };
  loss();
  ref::rmsnorm_backward(dx.data(), dw.data(), r.data(), x.data(), w.data(), rs.data(), M, C);
  expect_grad("dx", x, dx, loss);
  expect_grad("dw", w, dw, loss);
}

TEST(GradCheck, Gelu) {
  auto x = randn(50, 7, 2.0), r = randn(50, 8);
  std::vector<double> dx(50);
  for (size_t i = 0; i < x.size(); i++) dx[i] = r[i] * ref::gelu_grad(x[i]);
  auto loss = [&] { double s = 0; for (size_t i = 0; i < x.size(); i++) s += r[i] * ref::gelu(x[i]); return s; };
  expect_grad("dx", x, dx, loss);
}

TEST(GradCheck, RopeSplit) {
  const int64_t B = 2, T = 3, H = 2, hd = 4, C = H * hd;
  auto qkv = randn(B * T * 3 * C, 9);
  std::vector<int32_t> pos = {0, 1, 2, 7, 3, 5};
  const size_t n = B * H * T * hd;
  auto rq = randn(n, 10), rk = randn(n, 11), rv = randn(n, 12);
  std::vector<double> q(n), k(n), v(n), dqkv(qkv.size());
  auto loss = [&] {
    ref::rope_split_forward(q.data(), k.data(), v.data(), qkv.data(), pos.data(), B, T, H, hd, T, 0);
    return dot(q, rq) + dot(k, rk) + dot(v, rv);
  };
  ref::rope_split_backward(dqkv.data(), rq.data(), rk.data(), rv.data(), pos.data(), B, T, H, hd);
  expect_grad("dqkv", qkv, dqkv, loss);
}

TEST(GradCheck, Attention) {
  const int64_t B = 2, H = 2, T = 5, hd = 4, C = H * hd;
  const size_t n = B * H * T * hd;
  auto q = randn(n, 13), k = randn(n, 14), v = randn(n, 15), r = randn(B * T * C, 16);
  std::vector<double> y(B * T * C), P(B * H * T * T), dq(n), dk(n), dv(n);
  auto loss = [&] {
    ref::attention_forward(y.data(), P.data(), q.data(), k.data(), v.data(), B, H, T, T, T, hd, 0);
    return dot(y, r);
  };
  loss();
  ref::attention_backward(dq.data(), dk.data(), dv.data(), r.data(), P.data(), q.data(), k.data(), v.data(), B, H, T, hd);
  expect_grad("dq", q, dq, loss);
  expect_grad("dk", k, dk, loss);
  expect_grad("dv", v, dv, loss);
}

// Bidirectional (encoder) attention, the second row padded after 3 of its 5 tokens.
TEST(GradCheck, AttentionBidirectionalPadded) {
  const int64_t B = 2, H = 2, T = 5, hd = 4, C = H * hd;
  const int32_t lengths[B] = {5, 3};
  const size_t n = B * H * T * hd;
  auto q = randn(n, 17), k = randn(n, 18), v = randn(n, 19), r = randn(B * T * C, 20);
  std::vector<double> y(B * T * C), P(B * H * T * T), dq(n), dk(n), dv(n);
  auto loss = [&] {
    ref::attention_forward(y.data(), P.data(), q.data(), k.data(), v.data(), B, H, T, T, T, hd, 0, false, lengths);
    return dot(y, r);
  };
  loss();
  ref::attention_backward(dq.data(), dk.data(), dv.data(), r.data(), P.data(), q.data(), k.data(), v.data(), B, H, T,
                          hd, false, lengths);
  expect_grad("dq", q, dq, loss);
  expect_grad("dk", k, dk, loss);
  expect_grad("dv", v, dv, loss);
}

TEST(GradCheck, SoftmaxCrossEntropy) {
  const int64_t M = 4, V = 7;
  auto logits = randn(M * V, 17);
  std::vector<int32_t> tgt = {0, 6, 3, 3};
  std::vector<double> p(M * V), losses(M);
  auto loss = [&] {
    p = logits;
    ref::softmax_xent_forward(p.data(), losses.data(), tgt.data(), M, V);
    double s = 0;
    for (double l : losses) s += l;
    return s / M;
  };
  loss();
  ref::softmax_xent_backward(p.data(), tgt.data(), M, V, 1.0 / M);
  auto g = p;
  expect_grad("dlogits", logits, g, loss);
}


// Both branch decisions are constants of the tree; λ is kept away from 0 so the ±h
// perturbations never flip one (the check asserts it).
TEST(GradCheck, FffTree) {
  const int64_t M = 4, K = 2, D = 2, C = 5, N = (2 << D) - 1, P = D + 1;
  auto x = randn(M * C, 40), w_in = randn(K * N * C, 41), b = randn(K * N, 42), w_out = randn(K * N * C, 43),
       r = randn(M * C, 44);
  std::vector<double> y(M * C), path(M * K * P), lam(M * K * P);
  auto loss = [&] {
    ref::fff_forward(y.data(), path.data(), lam.data(), x.data(), w_in.data(), b.data(), w_out.data(), M, K, D, C);
    return dot(y, r);
  };
  loss();
  double closest = 1e9;
  for (double l : lam) closest = std::min(closest, std::abs(l));
  ASSERT_GT(closest, 1e-3) << "a λ this close to 0 could flip a branch under the perturbation";
  const auto path0 = path;
  std::vector<double> dx(M * C), dwi(K * N * C, 0.0), db(K * N, 0.0), dwo(K * N * C, 0.0);
  ref::fff_backward(dx.data(), dwi.data(), db.data(), dwo.data(), r.data(), x.data(), path.data(), lam.data(),
                    w_in.data(), w_out.data(), M, K, D, C);
  expect_grad("dx", x, dx, loss);
  expect_grad("dw_in", w_in, dwi, loss);
  expect_grad("db", b, db, loss);
  expect_grad("dw_out", w_out, dwo, loss);
  loss();
  EXPECT_EQ(path, path0);
}


// The leaf form's fast soft backward (kernels/fff_leaf.h) against central differences
// of the plain reference forward in double, through routers, path probabilities,
// transposed children, leaves and the hardening term.
TEST(GradCheck, FffLeafSoft) {
  const int64_t M = 3, K = 2, D = 2, l = 3, C = 4, R = 3, L = 4, H = 2 * L - 1;
  const double hard_w = 0.7;  // weight of the mean entropy in the loss
  auto x = randn(M * C, 70), rw = randn(K * R * C, 71), rb = randn(K * R, 72), w1 = randn(K * L * l * C, 73),
       b1 = randn(K * L * l, 74), w2 = randn(K * L * l * C, 75), b2 = randn(K * L * C, 76), r = randn(M * C, 77);
  auto f32 = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
  auto fx = f32(x), frw = f32(rw), frb = f32(rb), fw1 = f32(w1), fb1 = f32(b1), fw2 = f32(w2), fb2 = f32(b2), fr = f32(r);
  std::vector<float> logits(M * K * R), flip(M * K * R), prob(M * K * H), pl(M * K * L), h1(M * K * L * l),
      g(M * K * L * l), gs(M * K * L * l), y(M * C);
  LeafSoftActs a{logits.data(), flip.data(), prob.data(), pl.data(), h1.data(), g.data(), gs.data()};
  const LeafWeights w{frw.data(), frb.data(), fw1.data(), fb1.data(), fw2.data(), fb2.data()};
  leaf_soft_forward(y.data(), a, fx.data(), w, LeafShape{K, D, l, C}, M, 0.4, 3);
  int flips = 0;
  for (float f : flip) flips += f != 0;
  ASSERT_GT(flips, 0) << "no child transposition drawn: their gradient would go unchecked";
  std::vector<float> dx(M * C), drw(K * R * C, 0.0f), drb(K * R, 0.0f), dw1(K * L * l * C, 0.0f), db1(K * L * l, 0.0f),
      dw2(K * L * l * C, 0.0f), db2(K * L * C, 0.0f), dgs(M * K * L * l), dpl(M * K * L), dprob(M * K * H), dlogit(M * K * R);
  LeafSoftScratch sc{dgs.data(), dpl.data(), dprob.data(), dlogit.data()};
  leaf_soft_backward(dx.data(), LeafGrads{drw.data(), drb.data(), dw1.data(), db1.data(), dw2.data(), db2.data()}, sc,
                     fr.data(), fx.data(), a, w, LeafShape{K, D, l, C}, M, float(hard_w));
  std::vector<double> yr(M * C);
  auto loss = [&] {
    const double ent = ref::leaf_soft_forward(yr.data(), x.data(), rw.data(), rb.data(), w1.data(), b1.data(), w2.data(),
                                              b2.data(), flip.data(), M, K, D, l, C);
    return dot(yr, r) + hard_w * ent;
  };
  // the fast backward runs in float: compared at float precision
  auto check = [&](const char* what, std::vector<double>& v, const std::vector<float>& grad) {
    expect_grad(what, v, grad, loss, 1e-4);
  };
  check("dx", x, dx);
  check("d router w", rw, drw);
  check("d router b", rb, drb);
  check("dw1", w1, dw1);
  check("db1", b1, db1);
  check("dw2", w2, dw2);
  check("db2", b2, db2);
}

// ---- whole model (float, the real code path) -------------------------------------

namespace {

struct TinyModel {
  ModelConfig cfg = test::small_model(16, 2, 2, 8);
  int64_t B = 2, T = 8;
  std::vector<int32_t> in, tgt;
  std::vector<int32_t> lengths = {8, 8};  // real tokens per row (an encoder's second row is padded)
  explicit TinyModel(bool tied, const ModConfig& mod = ModConfig{}, MlpKind mlp = MlpKind::dense,
                     ModelKind kind = ModelKind::decoder) {
    cfg.kind = kind;
    cfg.vocab_size = 11;
    cfg.mlp_hidden = 24;
    cfg.tie_embeddings = tied;
    cfg.mod = mod;
    cfg.mlp = mlp;
    cfg.fff.trees = 2;
    cfg.fff.depth = 2;
    cfg.fff.leaf_width = 3;
    cfg.fff.hardening = 0.5;
    cfg.fff.transpose_prob = 0.3;
    Rng r(99);
    for (int64_t i = 0; i < B * T; i++) {
      in.push_back(int32_t(r.next_u64() % 11));
      tgt.push_back(int32_t(r.next_u64() % 11));
    }
    if (cfg.encoder()) {  // masked-LM: targets (text ids < 7) at a few real positions, −1 elsewhere
      lengths = {8, 5};
      for (int64_t i = 0; i < B * T; i++)
        tgt[size_t(i)] = i % 3 == 1 && i % T < lengths[size_t(i / T)] ? int32_t(r.next_u64() % 7) : -1;
    }
  }
};

const ForwardMode kTrain{true, 0};  // the same randomness (fff_leaf transpositions) in every forward

// For every parameter tensor, the directional derivative along a random unit
// direction u (and along the gradient itself) against (L(θ+εu) − L(θ−εu)) / 2ε.
// The objective is the LM loss plus MoD's weighted auxiliary losses. The MoD
// predictor's input gradient is stopped, so its loss counts as a function of the
// predictor's own weights only: for every other tensor the objective leaves it out
// (a predictor that leaked gradient into the residual stream fails here).
double objective(const Model& m, const Activations& a, const ForwardLoss& f, bool predictor_tensor) {
  double obj = f.objective();
  if (!predictor_tensor)
    for (int64_t l = 0; l < m.cfg.n_layers; l++)
      if (m.cfg.mod.routed(l) && m.cfg.mod.predictor())
        obj -= m.cfg.mod.predictor_weight * a.routed[size_t(l)].predictor_bce;
  return obj;
}

// Every FFF tree path the last forward took, in all blocks (routed ones included).
std::vector<float> fff_paths(const Model& m, const Activations& a) {
  std::vector<float> all;
  auto take = [&](const BlockActs& b, int64_t tokens) {
    if (!b.mlp.path) return;
    const MlpShape& s = a.dims.mlp;
    all.insert(all.end(), b.mlp.path, b.mlp.path + tokens * s.K * (s.D + 1));
  };
  for (size_t l = 0; l < a.blocks.size(); l++) {
    if (m.cfg.mod.routed(int64_t(l))) take(a.routed[l].inner, int64_t(a.routed[l].idx.size()));
    else take(a.blocks[l], a.dims.B * a.dims.T);
  }
  return all;
}

void check_model_gradient(bool tied, const ModConfig& mod = ModConfig{}, MlpKind mlp = MlpKind::dense,
                          ModelKind kind = ModelKind::decoder) {
  TinyModel t(tied, mod, mlp, kind);
  Model m(t.cfg);
  m.init_weights(5);
  // larger weights than the 0.02 init so every term carries signal, yet the loss
  // stays smooth enough over ±ε for central differences
  for (size_t i = 0; i < m.params.size(); i++) m.params.data()[i] *= 3.0f;
  m.enable_grads();
  Activations a(m, t.B, t.T, true);
  a.lengths = t.lengths;
  model_forward(m, a, t.in.data(), t.tgt.data(), kTrain);
  m.grads.zero();
  model_backward(m, a, t.in.data(), t.tgt.data(), 1.0f);
  const std::vector<float> paths = fff_paths(m, a);  // FFF branches must not flip under ±ε
  Rng rng(7);
  for (const auto& pt : m.tensors) {
    const size_t n = pt.numel();
    float* p = m.params.data() + pt.offset;
    const float* g = m.grads.data() + pt.offset;
    std::vector<std::vector<double>> dirs(2, std::vector<double>(n));
    for (size_t i = 0; i < n; i++) {
      dirs[0][i] = rng.normal();
      dirs[1][i] = g[i];
    }
    for (auto& u : dirs) {
      double norm = std::sqrt(dot(u, u));
      if (norm == 0) continue;
      for (auto& x : u) x /= norm;
      double analytic = 0;
      for (size_t i = 0; i < n; i++) analytic += g[i] * u[i];
      std::vector<float> saved(p, p + n);
      // A difference across an FFF branch flip is no derivative: if ±ε flips one, a
      // smaller ε is taken (the tree is piecewise smooth; every piece is checked).
      double eps = 1e-3, lp = 0, lm = 0;
      const bool pred = pt.name.find(".predictor.") != std::string::npos;
      for (int tries = 0;; tries++, eps /= 4) {
        for (size_t i = 0; i < n; i++) p[i] = float(saved[i] + eps * u[i]);
        lp = objective(m, a, model_forward(m, a, t.in.data(), t.tgt.data(), kTrain), pred);
        bool same = fff_paths(m, a) == paths;
        for (size_t i = 0; i < n; i++) p[i] = float(saved[i] - eps * u[i]);
        lm = objective(m, a, model_forward(m, a, t.in.data(), t.tgt.data(), kTrain), pred);
        same = same && fff_paths(m, a) == paths;
        if (same) break;
        ASSERT_LT(tries, 2) << pt.name << ": a tree branch flips even at ε = " << eps;
      }
      std::copy(saved.begin(), saved.end(), p);
      const double numeric = (lp - lm) / (2 * eps);
      EXPECT_NEAR(analytic, numeric, 1e-3 + 1e-2 * std::abs(numeric))
          << pt.name << (tied ? " (tied)" : " (untied)");
    }
  }
}

}  // namespace

TEST(GradCheck, WholeModelTied) { check_model_gradient(true); }
TEST(GradCheck, WholeModelUntied) { check_model_gradient(false); }

// Mixture-of-Depths: every other block routed at capacity 1/2, the router on the
// gradient path through the gate, both auxiliary losses weighted up so their
// gradients are checked too (the predictor's BCE reaches only its own weights).
// Verified to fail without any one term of the routed backward.
TEST(GradCheck, WholeModelMoD) {
  for (Gate gate : {Gate::raw, Gate::sigmoid}) {
    ModConfig mod;
    mod.enabled = true;
    mod.capacity = 0.5;
    mod.gate = gate;
    mod.bce_weight = 10;  // large, so the auxiliary gradients stand well above float noise
    mod.predictor_weight = 100;  // reaches only the predictor tensors
    SCOPED_TRACE(name_of(gate));
    check_model_gradient(false, mod);
  }
}

// Fast feedforward trees in every block, and inside Mixture-of-Depths routed blocks;
// and no MLP at all.
TEST(GradCheck, WholeModelFff) {
  check_model_gradient(false, ModConfig{}, MlpKind::fff);
  ModConfig mod;
  mod.enabled = true;
  mod.capacity = 0.5;
  mod.bce_weight = 10;
  mod.predictor_weight = 100;
  check_model_gradient(true, mod, MlpKind::fff);
  check_model_gradient(false, ModConfig{}, MlpKind::none);
}

// The leaf form in every block and inside routed blocks: soft training forward, child
// transpositions (drawn from the activations' noise seed, fixed here) and the
// hardening loss in the objective.
TEST(GradCheck, WholeModelFffLeaf) {
  check_model_gradient(false, ModConfig{}, MlpKind::fff_leaf);
  ModConfig mod;
  mod.enabled = true;
  mod.capacity = 0.5;
  check_model_gradient(true, mod, MlpKind::fff_leaf);
}

// Encoders: bidirectional attention with a padded row (its padding never attended
// to), the masked-LM loss at a few positions only (sparse prediction's gather and
// scatter), with every MLP kind.
TEST(GradCheck, WholeModelEncoder) {
  for (MlpKind mlp : {MlpKind::dense, MlpKind::fff, MlpKind::fff_leaf, MlpKind::none}) {
    SCOPED_TRACE(name_of(mlp));
    check_model_gradient(mlp == MlpKind::dense, ModConfig{}, mlp, ModelKind::encoder);
  }
  ModConfig mod;  // Mixture-of-Depths: bidirectional attention among each row's selected tokens
  mod.enabled = true;
  mod.capacity = 0.5;
  mod.bce_weight = 10;
  mod.predictor_weight = 100;
  check_model_gradient(false, mod, MlpKind::dense, ModelKind::encoder);
}

// bf16 mode rounds the matrix products' operands to 8 mantissa bits and accumulates
// in fp32: its gradient must agree with the fp32 gradient to within that rounding
// (a transposed or missing product would be off by order 1).
TEST(GradCheck, Bf16GradientMatchesFp32) {
  TinyModel t(false);
  Model m32(t.cfg), m16(t.cfg);
  m32.init_weights(5);
  for (size_t i = 0; i < m32.params.size(); i++) m32.params.data()[i] *= 3.0f;
  std::copy(m32.params.data(), m32.params.data() + m32.params.size(), m16.params.data());
  m16.enable_bf16();
  for (Model* m : {&m32, &m16}) {
    m->enable_grads();
    Activations a(*m, t.B, t.T, true);
    model_forward(*m, a, t.in.data(), t.tgt.data(), kTrain);
    m->grads.zero();
    model_backward(*m, a, t.in.data(), t.tgt.data(), 1.0f);
  }
  for (const auto& pt : m32.tensors) {
    double diff = 0, norm = 0;
    for (size_t i = pt.offset; i < pt.offset + pt.numel(); i++) {
      const double g32 = m32.grads.data()[i], g16 = m16.grads.data()[i];
      diff += (g16 - g32) * (g16 - g32);
      norm += g32 * g32;
    }
    EXPECT_LT(std::sqrt(diff / norm), 3e-2) << pt.name;
  }
}
