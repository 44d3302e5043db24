// Every optimised kernel against its plain reference version (src/kernels/reference.h).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "core/rng.h"
#include "core/threads.h"
#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/fff.h"
#include "kernels/fff_leaf.h"
#include "kernels/gelu.h"
#include "kernels/matmul.h"
#include "kernels/matmul_bf16.h"
#include "kernels/packed_matmul.h"
#include "kernels/reference.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/vec_math.h"
#include "test_util.h"

using namespace fw;
using fw::test::randn;

namespace {

// max |a-b| / (1 + |b|)
double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); i++) m = std::max(m, std::abs(double(a[i]) - b[i]) / (1 + std::abs(double(b[i]))));
  return m;
}

// The reference attention over a cache, one batch row at a time: row b's Tq queries sit
// at cache rows past[b]..past[b]+Tq of cache row rows[b] of k, v (rows, H, Tcap, hd).
// y (B,Tq,C); P (B,H,Tq,ldp), each query's visible keys' probabilities.
void reference_over_cache(std::vector<float>& y, std::vector<float>& P, const std::vector<float>& q,
                          const std::vector<float>& k, const std::vector<float>& v, int64_t B, int64_t H, int64_t Tq,
                          int64_t Tcap, int64_t hd, int64_t ldp, const int64_t* rows, const int64_t* past) {
  const int64_t C = H * hd;
  y.assign(size_t(B * Tq * C), 0.0f);
  P.assign(size_t(B * H * Tq * ldp), 0.0f);
  for (int64_t b = 0; b < B; b++) {
    const int64_t cache = rows[b] * H * Tcap * hd, Tk = past[b] + Tq;
    std::vector<float> yb(Tq * C), Pb(H * Tq * Tk);
    ref::attention_forward(yb.data(), Pb.data(), q.data() + b * H * Tq * hd, k.data() + cache, v.data() + cache,
                           1, H, Tq, Tk, Tcap, hd, past[b]);
    std::copy(yb.begin(), yb.end(), y.begin() + b * Tq * C);
    for (int64_t r = 0; r < H * Tq; r++)  // the kernel's P rows are ldp apart
      std::copy(Pb.begin() + r * Tk, Pb.begin() + (r + 1) * Tk, P.begin() + (b * H * Tq + r) * ldp);
  }
}

}  // namespace

TEST(Kernels, MatmulForwardBackward) {
  const int64_t M = 37, K = 29, N = 23;
  auto x = randn(M * K, 1), w = randn(N * K, 2), dy = randn(M * N, 3);
  std::vector<float> y(M * N), yr(M * N), dx(M * K), dxr(M * K), dw(N * K, 0.5f), dwr(N * K, 0.5f);
  matmul_forward(y.data(), x.data(), w.data(), M, K, N);
  ref::matmul_forward(yr.data(), x.data(), w.data(), M, K, N);
  EXPECT_LT(max_rel(y, yr), 1e-5);
  matmul_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), M, K, N);
  ref::matmul_backward(dxr.data(), dwr.data(), dy.data(), x.data(), w.data(), M, K, N);
  EXPECT_LT(max_rel(dx, dxr), 1e-5);
  EXPECT_LT(max_rel(dw, dwr), 1e-5);  // accumulated onto 0.5, not overwritten
}

TEST(Kernels, RmsNorm) {
  const int64_t M = 19, C = 48;
  auto x = randn(M * C, 4), w = randn(C, 5), dy = randn(M * C, 6);
  std::vector<float> y(M * C), yr(M * C), r(M), rr(M);
  rmsnorm_forward(y.data(), r.data(), x.data(), w.data(), M, C);
  ref::rmsnorm_forward(yr.data(), rr.data(), x.data(), w.data(), M, C, kNormEps);
  EXPECT_LT(max_rel(y, yr), 1e-5);
  EXPECT_LT(max_rel(r, rr), 1e-5);
  std::vector<float> dx(M * C, 1.0f), dxr(M * C, 1.0f), dw(C, 0.0f), dwr(C, 0.0f);
  rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), r.data(), M, C);
  ref::rmsnorm_backward(dxr.data(), dwr.data(), dy.data(), x.data(), w.data(), rr.data(), M, C);
  EXPECT_LT(max_rel(dx, dxr), 1e-5);
  EXPECT_LT(max_rel(dw, dwr), 1e-5);
}

TEST(Kernels, Gelu) {
  const int64_t n = 1000;
  auto x = randn(n, 7, 3.0), dy = randn(n, 8);
  std::vector<float> y(n), dx(n);
  gelu_forward(y.data(), x.data(), n);
  gelu_backward(dx.data(), dy.data(), x.data(), n);
  for (int64_t i = 0; i < n; i++) {
    EXPECT_NEAR(y[i], ref::gelu(double(x[i])), 1e-5);
    EXPECT_NEAR(dx[i], dy[i] * ref::gelu_grad(double(x[i])), 1e-5);
  }
}

// Batch rows write to their own cache rows (here permuted) after their own number of
// cached tokens: the reference, one row at a time, says where each key must land.
TEST(Kernels, RopeSplitForwardBackward) {
  const int64_t B = 2, T = 7, H = 3, hd = 8, C = H * hd, Tcap = 12;
  const int64_t rows[B] = {1, 0}, past[B] = {3, 5};
  auto qkv = randn(B * T * 3 * C, 9);
  std::vector<int32_t> pos(B * T);
  for (int64_t i = 0; i < B * T; i++) pos[i] = int32_t((i * 5) % 11);  // arbitrary positions
  std::vector<float> cs(11 * hd / 2), sn(11 * hd / 2);
  rope_table(cs.data(), sn.data(), 11, hd);
  std::vector<float> q(B * H * T * hd), k(B * H * Tcap * hd), v(B * H * Tcap * hd);
  std::vector<float> qr = q, kr = k, vr = v;
  rope_split_forward(q.data(), KvSlot{k.data(), v.data(), Tcap, rows, past}, qkv.data(), pos.data(), cs.data(),
                     sn.data(), B, T, H, hd);
  for (int64_t b = 0; b < B; b++) {
    const int64_t cache = rows[b] * H * Tcap * hd;
    ref::rope_split_forward(qr.data() + b * H * T * hd, kr.data() + cache, vr.data() + cache,
                            qkv.data() + b * T * 3 * C, pos.data() + b * T, 1, T, H, hd, Tcap, past[b]);
  }
  EXPECT_LT(max_rel(q, qr), 1e-5);
  EXPECT_LT(max_rel(k, kr), 1e-5);
  EXPECT_LT(max_rel(v, vr), 1e-6);
  auto dq = randn(B * H * T * hd, 10), dk = randn(B * H * T * hd, 11), dv = randn(B * H * T * hd, 12);
  std::vector<float> d(B * T * 3 * C), dr(B * T * 3 * C);
  rope_split_backward(d.data(), dq.data(), dk.data(), dv.data(), pos.data(), cs.data(), sn.data(), B, T, H, hd);
  ref::rope_split_backward(dr.data(), dq.data(), dk.data(), dv.data(), pos.data(), B, T, H, hd);
  EXPECT_LT(max_rel(d, dr), 1e-5);
}

// T = 11 fits one row block; T = 150 spans several (blocks of 64 rows, then 22).
class AttentionSizes : public ::testing::TestWithParam<int64_t> {};
INSTANTIATE_TEST_SUITE_P(Kernels, AttentionSizes, ::testing::Values(11, 150));

TEST_P(AttentionSizes, ForwardBackward) {
  const int64_t B = 2, H = 3, T = GetParam(), hd = 8, C = H * hd;
  auto q = randn(B * H * T * hd, 13), k = randn(B * H * T * hd, 14), v = randn(B * H * T * hd, 15);
  std::vector<float> y(B * T * C), yr(B * T * C), P(B * H * T * T), Pr(B * H * T * T);
  attention_forward(y.data(), P.data(), q.data(), KvSlot{k.data(), v.data(), T}, B, H, T, hd, T);
  ref::attention_forward(yr.data(), Pr.data(), q.data(), k.data(), v.data(), B, H, T, T, T, hd, 0);
  EXPECT_LT(max_rel(y, yr), 1e-5);
  EXPECT_LT(max_rel(P, Pr), 1e-5);
  auto dy = randn(B * T * C, 16);
  std::vector<float> dq(q.size()), dk(q.size()), dv(q.size()), dqr(q.size()), dkr(q.size()), dvr(q.size());
  std::vector<float> scratch(64 * T * T);
  attention_backward(dq.data(), dk.data(), dv.data(), scratch.data(), dy.data(), P.data(), q.data(), k.data(), v.data(), B, H, T, hd);
  ref::attention_backward(dqr.data(), dkr.data(), dvr.data(), dy.data(), Pr.data(), q.data(), k.data(), v.data(), B, H, T, hd);
  EXPECT_LT(max_rel(dq, dqr), 1e-5);
  EXPECT_LT(max_rel(dk, dkr), 1e-5);
  EXPECT_LT(max_rel(dv, dvr), 1e-5);
}

// Encoders: every query sees every real key of its row, none of its padding. Row 1
// of 150 has 70 real tokens (its row blocks stop at the padding). Against the
// reference, and with the padding's keys and values replaced by others: the real
// tokens' outputs and every gradient reaching real keys stay bit for bit.
TEST(Kernels, BidirectionalAttentionNeverSeesPadding) {
  const int64_t B = 2, H = 3, T = 150, hd = 8, C = H * hd;
  const int32_t lengths[B] = {150, 70};
  const AttentionMask mask{false, lengths};
  auto q = randn(B * H * T * hd, 23), k = randn(B * H * T * hd, 24), v = randn(B * H * T * hd, 25);
  auto dy = randn(B * T * C, 26);
  for (int64_t t = lengths[1]; t < T; t++)  // padded queries' outputs are never used: no gradient
    for (int64_t c = 0; c < C; c++) dy[(T + t) * C + c] = 0.0f;
  auto run = [&](const std::vector<float>& kk, const std::vector<float>& vv, std::vector<float>& y,
                 std::vector<float>& P, std::vector<float>& dq, std::vector<float>& dk, std::vector<float>& dv) {
    y.assign(B * T * C, 0.0f);
    P.assign(B * H * T * T, 0.0f);
    dq.assign(q.size(), 0.0f);
    dk.assign(q.size(), 0.0f);
    dv.assign(q.size(), 0.0f);
    std::vector<float> scratch(64 * T * T);
    attention_forward(y.data(), P.data(), q.data(), KvSlot{const_cast<float*>(kk.data()), const_cast<float*>(vv.data()), T},
                      B, H, T, hd, T, mask);
    attention_backward(dq.data(), dk.data(), dv.data(), scratch.data(), dy.data(), P.data(), q.data(), kk.data(),
                       vv.data(), B, H, T, hd, mask);
  };
  std::vector<float> y, P, dq, dk, dv;
  run(k, v, y, P, dq, dk, dv);
  std::vector<float> yr(B * T * C), Pr(B * H * T * T), dqr(q.size()), dkr(q.size()), dvr(q.size());
  ref::attention_forward(yr.data(), Pr.data(), q.data(), k.data(), v.data(), B, H, T, T, T, hd, 0, false, lengths);
  ref::attention_backward(dqr.data(), dkr.data(), dvr.data(), dy.data(), Pr.data(), q.data(), k.data(), v.data(), B,
                          H, T, hd, false, lengths);
  EXPECT_LT(max_rel(y, yr), 1e-5);
  EXPECT_LT(max_rel(P, Pr), 1e-5);
  EXPECT_LT(max_rel(dq, dqr), 1e-5);
  EXPECT_LT(max_rel(dk, dkr), 1e-5);
  EXPECT_LT(max_rel(dv, dvr), 1e-5);
  // a query of the full row sees keys after it (not causal)
  EXPECT_GT(P[(0 * T + 0) * T + T - 1], 0.0f);
  // other padding: the same real outputs and gradients, exactly
  auto k2 = k, v2 = v;
  for (int64_t h = 0; h < H; h++)
    for (int64_t t = lengths[1]; t < T; t++)
      for (int64_t c = 0; c < hd; c++) {
        const int64_t i = ((1 * H + h) * T + t) * hd + c;
        k2[i] = 100.0f + float(c);
        v2[i] = -50.0f;
      }
  std::vector<float> y2, P2, dq2, dk2, dv2;
  run(k2, v2, y2, P2, dq2, dk2, dv2);
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < lengths[b]; t++)
      for (int64_t c = 0; c < C; c++) ASSERT_EQ(y[(b * T + t) * C + c], y2[(b * T + t) * C + c]) << b << " " << t;
  EXPECT_EQ(dq, dq2);
  EXPECT_EQ(dv, dv2);
  for (int64_t h = 0; h < H; h++)  // padded keys get no gradient
    for (int64_t t = lengths[1]; t < T; t++)
      for (int64_t c = 0; c < hd; c++) ASSERT_EQ(dk[((1 * H + h) * T + t) * hd + c], 0.0f);
}

// Decoding reads keys from a larger cache: batch row b's queries sit at cache rows
// past(b)..past(b)+Tq of its own cache row (rows permuted, different lengths, as a
// batched Mixture-of-Depths generator has them).
TEST(Kernels, AttentionWithCacheOffsets) {
  const int64_t B = 2, H = 2, Tq = 3, Tcap = 10, hd = 4, C = H * hd, ldp = Tcap;
  const int64_t rows[B] = {1, 0}, past[B] = {5, 2};
  auto q = randn(B * H * Tq * hd, 17), k = randn(B * H * Tcap * hd, 18), v = randn(B * H * Tcap * hd, 19);
  std::vector<float> y(B * Tq * C), P(B * H * Tq * ldp), yr, Pr;
  attention_forward(y.data(), P.data(), q.data(), KvSlot{k.data(), v.data(), Tcap, rows, past}, B, H, Tq, hd, ldp);
  reference_over_cache(yr, Pr, q, k, v, B, H, Tq, Tcap, hd, ldp, rows, past);
  EXPECT_LT(max_rel(y, yr), 1e-5);
  for (int64_t b = 0; b < B; b++)
    for (int64_t r = 0; r < H * Tq; r++)
      for (int64_t j = 0; j < past[b] + Tq; j++) {
        const int64_t i = (b * H * Tq + r) * ldp + j;
        EXPECT_NEAR(P[i], Pr[i], 1e-5) << b << " " << r << " " << j;
      }
}

// A bf16 cache: rope_split_forward writes each key and value as the fp32 cache holds
// it, rounded to bf16 (nearest even), at the same place; the bf16 slots it does not
// write stay as they were.
TEST(Kernels, RopeSplitIntoABf16CacheRoundsWhatAnFp32CacheHolds) {
  const int64_t B = 2, T = 5, H = 2, hd = 16, C = H * hd, Tcap = 9;
  const int64_t rows[B] = {1, 0}, past[B] = {4, 2};
  auto qkv = randn(B * T * 3 * C, 31);
  std::vector<int32_t> pos(B * T);
  for (int64_t i = 0; i < B * T; i++) pos[i] = int32_t((i * 3) % 9);
  std::vector<float> cs(9 * hd / 2), sn(9 * hd / 2);
  rope_table(cs.data(), sn.data(), 9, hd);
  std::vector<float> q(B * H * T * hd), q16(B * H * T * hd), k(B * H * Tcap * hd), v(B * H * Tcap * hd);
  std::vector<bf16> k16(k.size(), 0x7FC1), v16(v.size(), 0x7FC1);  // a NaN marks slots not written
  rope_split_forward(q.data(), KvSlot{k.data(), v.data(), Tcap, rows, past}, qkv.data(), pos.data(), cs.data(),
                     sn.data(), B, T, H, hd);
  rope_split_forward(q16.data(), KvSlot{nullptr, nullptr, Tcap, rows, past, k16.data(), v16.data()}, qkv.data(),
                     pos.data(), cs.data(), sn.data(), B, T, H, hd);
  EXPECT_EQ(q, q16);  // queries stay fp32
  int64_t written = 0;
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t t = 0; t < Tcap; t++)
        for (int64_t c = 0; c < hd; c++) {
          const size_t i = size_t(((rows[b] * H + h) * Tcap + t) * hd + c);
          if (t >= past[b] && t < past[b] + T) {
            ASSERT_EQ(k16[i], round_bf16(k[i])) << b << " " << h << " " << t << " " << c;
            ASSERT_EQ(v16[i], round_bf16(v[i])) << b << " " << h << " " << t << " " << c;
            written++;
          } else {
            ASSERT_EQ(k16[i], 0x7FC1);
            ASSERT_EQ(v16[i], 0x7FC1);
          }
        }
  EXPECT_EQ(written, B * H * T * hd);
}

// Attention over a bf16 cache equals the reference over the rounded keys and values,
// for one query per row (decoding: the one-query kernel at hd = 16 and 64, and the
// widened rows at hd = 12, not a multiple of 16) and for blocks of queries (prompt
// chunks), rows permuted, pasts unequal, long enough for several key blocks.
TEST(Kernels, AttentionOverABf16CacheEqualsTheReferenceOverRoundedKeys) {
  for (const int64_t hd : {16, 64, 12})
    for (const int64_t Tq : {1, 3}) {
      const int64_t B = 3, H = 2, Tcap = 90, C = H * hd, ldp = Tcap;
      const int64_t rows[B] = {2, 0, 1}, past[B] = {70, 0, 33};
      auto q = randn(B * H * Tq * hd, 41), k = randn(B * H * Tcap * hd, 42, 2.0), v = randn(B * H * Tcap * hd, 43);
      std::vector<bf16> k16(k.size()), v16(v.size());
      to_bf16(k16.data(), k.data(), int64_t(k.size()));
      to_bf16(v16.data(), v.data(), int64_t(v.size()));
      std::vector<float> kr(k.size()), vr(v.size());  // the rounded values, in fp32
      for (size_t i = 0; i < k.size(); i++) kr[i] = bf16_to_float(k16[i]), vr[i] = bf16_to_float(v16[i]);
      std::vector<float> y(B * Tq * C), P(B * H * Tq * ldp, -1.0f), yr, Pr;
      attention_forward(y.data(), P.data(), q.data(), KvSlot{nullptr, nullptr, Tcap, rows, past, k16.data(), v16.data()},
                        B, H, Tq, hd, ldp);
      reference_over_cache(yr, Pr, q, kr, vr, B, H, Tq, Tcap, hd, ldp, rows, past);
      for (int64_t b = 0; b < B; b++)
        for (int64_t r = 0; r < H * Tq; r++)
          for (int64_t j = 0; j < past[b] + Tq; j++) {
            const int64_t i = (b * H * Tq + r) * ldp + j;
            ASSERT_NEAR(P[i], Pr[i], 1e-5) << hd << " " << Tq << " " << b << " " << r;
          }
      EXPECT_LT(max_rel(y, yr), 1e-5) << "hd " << hd << " Tq " << Tq;
    }
}

TEST(Kernels, SoftmaxCrossEntropy) {
  const int64_t M = 13, V = 37;
  auto logits = randn(M * V, 20, 2.0);
  std::vector<int32_t> tgt(M);
  for (int64_t i = 0; i < M; i++) tgt[i] = int32_t((i * 7) % V);
  auto a = logits, b = logits;
  std::vector<float> la(M), lb(M);
  softmax_xent_forward(a.data(), la.data(), tgt.data(), M, V);
  ref::softmax_xent_forward(b.data(), lb.data(), tgt.data(), M, V);
  EXPECT_LT(max_rel(la, lb), 1e-5);
  EXPECT_LT(max_rel(a, b), 1e-5);
  softmax_xent_backward(a.data(), tgt.data(), M, V, 0.25f);
  ref::softmax_xent_backward(b.data(), tgt.data(), M, V, 0.25f);
  EXPECT_LT(max_rel(a, b), 1e-5);
}

TEST(Kernels, Embedding) {
  const int64_t V = 10, C = 33, M = 25;
  auto wte = randn(V * C, 21), dx = randn(M * C, 22);
  std::vector<int32_t> tok(M);
  for (int64_t i = 0; i < M; i++) tok[i] = int32_t((i * 3) % V);
  std::vector<float> x(M * C), xr(M * C), dw(V * C, 0.0f), dwr(V * C, 0.0f);
  embedding_forward(x.data(), tok.data(), wte.data(), M, C);
  ref::embedding_forward(xr.data(), tok.data(), wte.data(), M, C);
  EXPECT_EQ(x, xr);
  embedding_backward(dw.data(), dx.data(), tok.data(), M, C);
  ref::embedding_backward(dwr.data(), dx.data(), tok.data(), M, C);
  EXPECT_EQ(dw, dwr);  // token order: the same sums in the same order
}

TEST(Kernels, SoftmaxRows) {
  const int64_t M = 7, V = 301;
  auto a = randn(M * V, 23);
  for (auto& v : a) v *= 8.0f;  // large logits: the max subtraction matters
  auto b = a;
  softmax_rows(a.data(), M, V);
  ref::softmax_rows(b.data(), M, V);
  EXPECT_LT(max_rel(a, b), 1e-5);
}

TEST(Kernels, AdamW) {
  const int64_t n = 101;
  auto p = randn(n, 23), g = randn(n, 24), m = randn(n, 25, 0.1), v = randn(n, 26, 0.1);
  for (auto& x : v) x = std::abs(x);
  auto pr = p, mr = m, vr = v;
  AdamWHyper h{1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 3, 0.5f};
  adamw_update(p.data(), g.data(), m.data(), v.data(), n, h);
  ref::adamw_update(pr.data(), g.data(), mr.data(), vr.data(), n, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 3, 0.5f);
  EXPECT_LT(max_rel(p, pr), 1e-6);
  EXPECT_LT(max_rel(m, mr), 1e-6);
  EXPECT_LT(max_rel(v, vr), 1e-6);
  EXPECT_NEAR(sum_squares(g.data(), n), [&] { double s = 0; for (float x : g) s += double(x) * x; return s; }(), 1e-9);
}

TEST(Kernels, VectorisedExpAndErf) {
  double worst_exp = 0, worst_erf = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.01f) {
    const double e = std::exp(double(x));
    worst_exp = std::max(worst_exp, std::abs(vexp(x) - e) / e);
  }
  for (float x = -6.0f; x <= 6.0f; x += 0.001f)
    worst_erf = std::max(worst_erf, std::abs(double(verf(x)) - std::erf(double(x))));
  EXPECT_LT(worst_exp, 3e-7);
  EXPECT_LT(worst_erf, 5e-7);
  EXPECT_EQ(vexp(-200.0f), vexp(-87.0f));  // clamped, no denormal/NaN garbage
}

// The one GELU and sigmoid every MLP kind and the router use, against the exact
// functions in double.
TEST(Kernels, VectorisedGeluAndSigmoid) {
  double worst_gelu = 0, worst_grad = 0, worst_sigmoid = 0;
  for (float x = -10.0f; x <= 10.0f; x += 0.001f) {
    worst_gelu = std::max(worst_gelu, std::abs(double(vgelu(x)) - ref::gelu(double(x))));
    worst_grad = std::max(worst_grad, std::abs(double(vgelu_grad(x)) - ref::gelu_grad(double(x))));
    worst_sigmoid = std::max(worst_sigmoid, std::abs(double(vsigmoid(x)) - 1.0 / (1.0 + std::exp(-double(x)))));
  }
  EXPECT_LT(worst_gelu, 5e-6);  // |x|·(erf's 5e-7) at |x| = 10
  EXPECT_LT(worst_grad, 5e-6);
  EXPECT_LT(worst_sigmoid, 2e-7);
  EXPECT_EQ(vsigmoid(0.0f), 0.5f);  // the causal decisions rely on σ(z) > 0.5 ⇔ z > 0
  EXPECT_GT(vsigmoid(1e-6f), 0.5f);
  EXPECT_TRUE(vsigmoid(-200.0f) >= 0.0f && vsigmoid(-200.0f) < 1e-37f);  // exp clamped: no inf/NaN
  EXPECT_EQ(vsigmoid(200.0f), 1.0f);
}

TEST(Kernels, Bf16RoundsToNearestEven) {
  std::vector<float> x = {1.0f, -2.5f, 0.0f, 3.14159265f, 1e-20f, 65504.0f,
                          std::bit_cast<float>(0x3F808000u),   // halfway, even below: rounds down
                          std::bit_cast<float>(0x3F818000u),   // halfway, odd below: rounds up
                          std::bit_cast<float>(0x3F808001u)};  // just above halfway: up
  std::vector<bf16> y(x.size());
  to_bf16(y.data(), x.data(), int64_t(x.size()));
  EXPECT_EQ(y[0], 0x3F80);
  EXPECT_EQ(bf16_to_float(y[1]), -2.5f);
  EXPECT_EQ(y[2], 0x0000);
  EXPECT_NEAR(bf16_to_float(y[3]), 3.14159265f, 3.14159265f / 128);
  EXPECT_EQ(y[6], 0x3F80);
  EXPECT_EQ(y[7], 0x3F82);
  EXPECT_EQ(y[8], 0x3F81);
  float nan = std::numeric_limits<float>::quiet_NaN();
  bf16 n;
  to_bf16(&n, &nan, 1);
  EXPECT_TRUE(std::isnan(bf16_to_float(n)));
}

// The bf16 products equal fp32 products of the bf16-rounded operands (fp32
// accumulation), which is what mixed precision promises.
TEST(Kernels, MatmulBf16EqualsRoundedFp32) {
  const int64_t M = 37, K = 29, N = 23;
  auto x = randn(M * K, 31), w = randn(N * K, 32), dy = randn(M * N, 33);
  auto rounded = [](std::vector<float> v) {
    std::vector<bf16> h(v.size());
    to_bf16(h.data(), v.data(), int64_t(v.size()));
    for (size_t i = 0; i < v.size(); i++) v[i] = bf16_to_float(h[i]);
    return v;
  };
  std::vector<bf16> w16(w.size());
  to_bf16(w16.data(), w.data(), int64_t(w.size()));
  auto xr = rounded(x), wr = rounded(w), dyr = rounded(dy);
  std::vector<float> y(M * N), yr(M * N), dx(M * K), dxr(M * K), dw(N * K, 0.5f), dwr(N * K, 0.5f);
  matmul_forward_bf16(y.data(), x.data(), w16.data(), M, K, N);
  ref::matmul_forward(yr.data(), xr.data(), wr.data(), M, K, N);
  EXPECT_LT(max_rel(y, yr), 1e-5);
  matmul_backward_bf16(dx.data(), dw.data(), dy.data(), x.data(), w16.data(), M, K, N);
  ref::matmul_backward(dxr.data(), dwr.data(), dyr.data(), xr.data(), wr.data(), M, K, N);
  EXPECT_LT(max_rel(dx, dxr), 1e-5);
  EXPECT_LT(max_rel(dw, dwr), 1e-5);  // accumulated onto 0.5
}

// Packed weights (decoding's products) give the plain product within fp32 rounding
// for every row count a decoding step or prefill chunk has, in both precisions; the
// packed copy is a copy (W may change after); and a row's result does not depend on
// how many rows share the call, bit for bit, which is what lets a sequence decode the
// same alone or in any batch (infer/generator.h, the server's equality tests); and the
// primitives stay few: rows go in at most two parts (16·⌊M/16⌋ and the rest), so
// products of every row count up to 70 build 19 of them, not 70.
TEST(Kernels, PackedMatrixEqualsPlainProductForEveryRowCount) {
  struct Shape { int64_t K, N; };
  for (const Shape sh : {Shape{29, 23}, Shape{256, 768}, Shape{37, 1000}})
    for (const bool bf16_mode : {false, true}) {
      const int64_t K = sh.K, N = sh.N, Mmax = 70;
      auto x = randn(Mmax * K, 41), w = randn(N * K, 42);
      std::vector<bf16> w16(w.size());
      to_bf16(w16.data(), w.data(), int64_t(w.size()));
      std::vector<float> xr = x, wr = w;  // the operands the product sees
      if (bf16_mode) {
        std::vector<bf16> x16(x.size());
        to_bf16(x16.data(), x.data(), int64_t(x.size()));
        for (size_t i = 0; i < x.size(); i++) xr[i] = bf16_to_float(x16[i]);
        for (size_t i = 0; i < w.size(); i++) wr[i] = bf16_to_float(w16[i]);
      }
      const PackedMatrix packed(w.data(), bf16_mode ? w16.data() : nullptr, N, K);
      std::fill(w.begin(), w.end(), 0.0f);  // packed a copy
      std::fill(w16.begin(), w16.end(), bf16(0));
      std::vector<float> alone(size_t(Mmax * N));  // each row in a call of its own
      for (int64_t i = 0; i < Mmax; i++) packed.forward(alone.data() + i * N, x.data() + i * K, 1);
      for (const int64_t M : {int64_t(0), int64_t(1), int64_t(2), int64_t(15), int64_t(16), int64_t(17), int64_t(33),
                              int64_t(48), int64_t(64), Mmax}) {
        SCOPED_TRACE("K=" + std::to_string(K) + " N=" + std::to_string(N) + " M=" + std::to_string(M) +
                     (bf16_mode ? " bf16" : " fp32"));
        std::vector<float> y(size_t(M * N), -7.0f), yr(size_t(M * N));
        packed.forward(y.data(), x.data(), M);
        ref::matmul_forward(yr.data(), xr.data(), wr.data(), M, K, N);
        EXPECT_LT(max_rel(y, yr), 1e-5);
        EXPECT_TRUE(std::equal(y.begin(), y.end(), alone.begin()));
      }
      // every row count up to Mmax: primitives for 1-16 rows and for 32, 48, 64 only
      for (int64_t M = 1; M <= Mmax; M++) {
        std::vector<float> y(size_t(M * N));
        packed.forward(y.data(), x.data(), M);
      }
      EXPECT_EQ(packed.primitives(), 16u + 3u);
    }
}

// The FFF kernels against the explicit per-token sum over the visited neurons in
// double precision: same paths exactly, outputs and gradients within fp32 rounding.
// Both forward forms (per token, batched) give the same bits, and the batched one's
// result does not depend on the thread count. The shapes hit every code path: one
// token; depth 0; K > 1 (trees walked four at a time, and alone); odd widths (vector
// tails); a tree deep enough for the bucketed phase (2^(D+1) rows beyond 256 KiB) with
// buckets of one and empty buckets; every token in one leaf; in the weight gradients,
// leaves counted (few) and sorted (many), levels six at a time. The same again with
// bf16 weights (bf16 mode).
namespace {
struct FffCase {
  int64_t M, K, D, C;
  bool same_token;  // every token the same vector: all in one leaf
};

void check_fff_case(const FffCase& c) {
  SCOPED_TRACE("M=" + std::to_string(c.M) + " K=" + std::to_string(c.K) + " D=" + std::to_string(c.D) +
               " C=" + std::to_string(c.C) + (c.same_token ? " same token" : ""));
  const int64_t M = c.M, K = c.K, D = c.D, C = c.C, N = (2 << D) - 1, P = D + 1;
  const TreeShape shape{K, D, C};
  // weights at the model's initial scale (1/sqrt(C)), so λ and dλ stay of order one
  const double ws = 1.0 / std::sqrt(double(C));
  auto x = randn(M * C, 30), w_in = randn(K * N * C, 31, ws), b = randn(K * N, 32, 0.5),
       w_out = randn(K * N * C, 33, ws), dy = randn(M * C, 34);
  if (c.same_token)
    for (int64_t t = 1; t < M; t++) std::copy(x.begin(), x.begin() + C, x.begin() + t * C);
  auto to_double = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
  auto xd = to_double(x), wid = to_double(w_in), bd = to_double(b), wod = to_double(w_out), dyd = to_double(dy);
  std::vector<double> yr(M * C), pathr(M * K * P), lamr(M * K * P);
  ref::fff_forward(yr.data(), pathr.data(), lamr.data(), xd.data(), wid.data(), bd.data(), wod.data(), M, K, D, C);
  auto near = [](const std::vector<float>& a, const std::vector<double>& r) {
    double m = 0;
    for (size_t i = 0; i < a.size(); i++) m = std::max(m, std::abs(a[i] - r[i]) / (1 + std::abs(r[i])));
    return m;
  };
  struct Out {
    std::vector<float> y, path, lam;
  };
  auto forward = [&](FffForm form, int threads) {
    set_num_threads(threads);
    Out o{std::vector<float>(M * C), std::vector<float>(M * K * P), std::vector<float>(M * K * P)};
    fff_forward(o.y.data(), o.path.data(), o.lam.data(), x.data(), w_in.data(), b.data(), w_out.data(), shape, M,
                form);
    return o;
  };
  const int threads = num_threads();
  const Out one = forward(FffForm::per_token, threads), batched = forward(FffForm::batched, threads),
            batched1 = forward(FffForm::batched, 1);
  set_num_threads(threads);
  EXPECT_EQ(std::vector<double>(one.path.begin(), one.path.end()), pathr);
  EXPECT_LT(near(one.lam, lamr), 1e-5);
  EXPECT_LT(near(one.y, yr), 1e-5);
  for (const Out* o : {&batched, &batched1}) {  // bit for bit
    EXPECT_EQ(o->path, one.path);
    EXPECT_EQ(o->lam, one.lam);
    EXPECT_EQ(o->y, one.y);
  }
  std::set<float> leaves;
  for (int64_t t = 0; t < M; t++) leaves.insert(one.path[(t * K) * P + D]);
  if (c.same_token) {
    EXPECT_EQ(leaves.size(), 1u);
  } else if (M >= 50 && D >= 4) {
    EXPECT_GT(leaves.size(), 8u);  // many paths, not one
  }
  // backward: gradients accumulate onto what is there
  std::vector<double> dxr(M * C), dwir(K * N * C, 0.5), dbr(K * N, 0.25), dwor(K * N * C, -0.5);
  ref::fff_backward(dxr.data(), dwir.data(), dbr.data(), dwor.data(), dyd.data(), xd.data(), pathr.data(),
                    lamr.data(), wid.data(), wod.data(), M, K, D, C);
  struct Grads {
    std::vector<float> dx, dwi, db, dwo;
  };
  auto backward = [&](int threads) {
    set_num_threads(threads);
    Grads g{std::vector<float>(M * C), std::vector<float>(K * N * C, 0.5f), std::vector<float>(K * N, 0.25f),
            std::vector<float>(K * N * C, -0.5f)};
    std::vector<float> dlam(M * K * P);
    fff_backward(g.dx.data(), g.dwi.data(), g.db.data(), g.dwo.data(), dlam.data(), dy.data(), x.data(),
                 one.path.data(), one.lam.data(), w_in.data(), w_out.data(), shape, M);
    return g;
  };
  const Grads g = backward(threads), g1 = backward(1);
  set_num_threads(threads);
  EXPECT_LT(near(g.dx, dxr), 1e-5);
  EXPECT_LT(near(g.dwi, dwir), 1e-5);
  EXPECT_LT(near(g.db, dbr), 1e-5);
  EXPECT_LT(near(g.dwo, dwor), 1e-5);
  EXPECT_EQ(g.dx, g1.dx);  // bit for bit across thread counts
  EXPECT_EQ(g.dwi, g1.dwi);
  EXPECT_EQ(g.db, g1.db);
  EXPECT_EQ(g.dwo, g1.dwo);

  // bf16 mode: weights in bf16; x (forward) and dy (for dλ) rounded to bf16 on the way
  // in, products summed in fp32; the weight gradients from fp32 x and dy. The
  // reference: the double sums over those same rounded values.
  std::vector<bf16> wi16(w_in.size()), wo16(w_out.size());
  to_bf16(wi16.data(), w_in.data(), int64_t(w_in.size()));
  to_bf16(wo16.data(), w_out.data(), int64_t(w_out.size()));
  auto rounded = [](const std::vector<float>& v) {
    std::vector<bf16> h(v.size());
    to_bf16(h.data(), v.data(), int64_t(v.size()));
    std::vector<double> r(v.size());
    for (size_t i = 0; i < v.size(); i++) r[i] = bf16_to_float(h[i]);
    return r;
  };
  const auto xr = rounded(x), wir = rounded(w_in), wor = rounded(w_out), dyr = rounded(dy);
  std::vector<double> y16r(M * C), path16r(M * K * P), lam16r(M * K * P);
  ref::fff_forward(y16r.data(), path16r.data(), lam16r.data(), xr.data(), wir.data(), bd.data(), wor.data(), M, K,
                   D, C);
  std::vector<float> y16(M * C), path16(M * K * P), lam16(M * K * P), y16b = y16, path16b = path16, lam16b = lam16;
  fff_forward(y16.data(), path16.data(), lam16.data(), x.data(), wi16.data(), b.data(), wo16.data(), shape, M,
              FffForm::per_token);
  fff_forward(y16b.data(), path16b.data(), lam16b.data(), x.data(), wi16.data(), b.data(), wo16.data(), shape, M,
              FffForm::batched);
  EXPECT_EQ(std::vector<double>(path16.begin(), path16.end()), path16r);
  EXPECT_LT(near(lam16, lam16r), 1e-5);
  EXPECT_LT(near(y16, y16r), 1e-5);
  EXPECT_EQ(path16b, path16);
  EXPECT_EQ(lam16b, lam16);
  EXPECT_EQ(y16b, y16);
  // dλ, dx, dw_in, db from the rounded dy; dw_out from the fp32 one
  std::vector<double> dx16r(M * C), dwi16r(K * N * C, 0.5), db16r(K * N, 0.25), dwo16r(K * N * C, -0.5),
      dwo_from_dy(K * N * C, -0.5), scratch_dx(M * C), scratch_dwi(K * N * C), scratch_db(K * N);
  ref::fff_backward(dx16r.data(), dwi16r.data(), db16r.data(), dwo16r.data(), dyr.data(), xd.data(), path16r.data(),
                    lam16r.data(), wir.data(), wor.data(), M, K, D, C);
  ref::fff_backward(scratch_dx.data(), scratch_dwi.data(), scratch_db.data(), dwo_from_dy.data(), dyd.data(), xd.data(),
                    path16r.data(), lam16r.data(), wir.data(), wor.data(), M, K, D, C);
  Grads g16{std::vector<float>(M * C), std::vector<float>(K * N * C, 0.5f), std::vector<float>(K * N, 0.25f),
            std::vector<float>(K * N * C, -0.5f)};
  std::vector<float> dlam16(M * K * P);
  fff_backward(g16.dx.data(), g16.dwi.data(), g16.db.data(), g16.dwo.data(), dlam16.data(), dy.data(), x.data(),
               path16.data(), lam16.data(), wi16.data(), wo16.data(), shape, M);
  EXPECT_LT(near(g16.dx, dx16r), 1e-5);
  EXPECT_LT(near(g16.dwi, dwi16r), 1e-5);
  EXPECT_LT(near(g16.db, db16r), 1e-5);
  EXPECT_LT(near(g16.dwo, dwo_from_dy), 1e-5);
}

}  // namespace

TEST(Kernels, FffTreeEqualsExplicitSumOverVisitedNeurons) {
  for (const FffCase& c : {FffCase{1, 1, 3, 16, false},    // one token
                           FffCase{9, 1, 0, 16, false},    // depth 0: one neuron
                           FffCase{50, 3, 4, 37, false},   // K > 1, odd width
                           FffCase{70, 6, 3, 50, false},   // trees four at a time, and two alone
                           FffCase{130, 2, 5, 200, false},  // a width with 128-float blocks and a tail
                           FffCase{300, 1, 12, 24, false},  // bucketed phase: 2048 buckets, most empty or of one
                           FffCase{77, 2, 11, 40, true}})  // all tokens in one leaf, one full bucket
    check_fff_case(c);
}

// One tree of depth 0 is one neuron: y = GELU(x·w_in + b)·w_out.
TEST(Kernels, FffDepthZeroIsOneNeuronMlp) {
  const int64_t M = 9, C = 16;
  auto x = randn(M * C, 35), w_in = randn(C, 36), b = randn(1, 37), w_out = randn(C, 38);
  std::vector<float> y(M * C), path(M), lam(M);
  fff_forward(y.data(), path.data(), lam.data(), x.data(), w_in.data(), b.data(), w_out.data(), TreeShape{1, 0, C}, M);
  for (int64_t t = 0; t < M; t++) {
    double l = b[0];
    for (int64_t c = 0; c < C; c++) l += double(x[t * C + c]) * w_in[c];
    for (int64_t c = 0; c < C; c++) EXPECT_NEAR(y[t * C + c], ref::gelu(l) * w_out[c], 1e-5);
    EXPECT_EQ(path[t], 0.0f);
  }
}

// The original FFF (leaf form): the soft forward equals the plain reference, given the
// same child transpositions, and the transpositions come at the asked rate,
// deterministically per seed.
TEST(Kernels, FffLeafSoftForwardEqualsReference) {
  const int64_t M = 40, K = 2, D = 3, l = 4, C = 19, R = 7, L = 8;
  auto x = randn(M * C, 50), rw = randn(K * R * C, 51), rb = randn(K * R, 52), w1 = randn(K * L * l * C, 53),
       b1 = randn(K * L * l, 54), w2 = randn(K * L * l * C, 55), b2 = randn(K * L * C, 56);
  std::vector<float> buf[7];
  LeafSoftActs a;
  float** fields[7] = {&a.logits, &a.flip, &a.prob, &a.pl, &a.h1, &a.g, &a.gs};
  const int64_t sizes[7] = {M * K * R, M * K * R, M * K * (2 * L - 1), M * K * L, M * K * L * l, M * K * L * l, M * K * L * l};
  for (int i = 0; i < 7; i++) {
    buf[i].resize(size_t(sizes[i]));
    *fields[i] = buf[i].data();
  }
  std::vector<float> y(M * C), yr(M * C);
  const LeafWeights w{rw.data(), rb.data(), w1.data(), b1.data(), w2.data(), b2.data()};
  const double H = leaf_soft_forward(y.data(), a, x.data(), w, LeafShape{K, D, l, C}, M, 0.25, 7);
  const double Hr = ref::leaf_soft_forward(yr.data(), x.data(), rw.data(), rb.data(), w1.data(), b1.data(), w2.data(),
                                           b2.data(), a.flip, M, K, D, l, C);
  EXPECT_LT(max_rel(y, yr), 1e-5);
  EXPECT_NEAR(H, Hr, 1e-5);
  const std::vector<float> flips(a.flip, a.flip + M * K * R);
  double rate = 0;
  for (float f : flips) rate += f / double(flips.size());
  EXPECT_NEAR(rate, 0.25, 0.06);  // 560 draws
  leaf_soft_forward(y.data(), a, x.data(), w, LeafShape{K, D, l, C}, M, 0.25, 7);
  EXPECT_EQ(flips, std::vector<float>(a.flip, a.flip + M * K * R));  // same seed, same flips
  leaf_soft_forward(y.data(), a, x.data(), w, LeafShape{K, D, l, C}, M, 0.25, 8);
  EXPECT_NE(flips, std::vector<float>(a.flip, a.flip + M * K * R));
}

// Hard inference (descend by σ > 0.5, one leaf) equals the soft forward when every
// router output is exactly 0 or 1 (|logit| > 104 saturates σ in float): each router
// reads one channel ×1000, and every channel is at least 0.2 away from 0.
TEST(Kernels, FffLeafHardEqualsSoftWhenRoutersSaturate) {
  const int64_t M = 30, K = 3, D = 3, l = 5, C = 16, R = 7, L = 8;
  auto x = randn(M * C, 60), w1 = randn(K * L * l * C, 63), b1 = randn(K * L * l, 64), w2 = randn(K * L * l * C, 65),
       b2 = randn(K * L * C, 66);
  for (auto& v : x) v = v < 0 ? v - 0.2f : v + 0.2f;
  std::vector<float> rw(K * R * C, 0.0f), rb(K * R, 0.0f);
  for (int64_t n = 0; n < K * R; n++) rw[n * C + (n * 5) % C] = 1000.0f;
  const LeafWeights w{rw.data(), rb.data(), w1.data(), b1.data(), w2.data(), b2.data()};
  std::vector<float> logits(M * K * R), flip(M * K * R), prob(M * K * (2 * L - 1)), pl(M * K * L),
      h1(M * K * L * l), g(M * K * L * l), gs(M * K * L * l);
  LeafSoftActs a{logits.data(), flip.data(), prob.data(), pl.data(), h1.data(), g.data(), gs.data()};
  std::vector<float> soft(M * C), hard(M * C), leaf(M * K), hidden(M * K * l);
  leaf_soft_forward(soft.data(), a, x.data(), w, LeafShape{K, D, l, C}, M, 0.0, 1);
  for (float r : logits) ASSERT_GT(std::abs(r), 104.0f) << "a router output is not exactly 0 or 1";
  leaf_hard_forward(hard.data(), leaf.data(), hidden.data(), x.data(), w, LeafShape{K, D, l, C}, M);
  EXPECT_LT(max_rel(hard, soft), 1e-5);
  std::set<float> used(leaf.begin(), leaf.end());
  EXPECT_GT(used.size(), 3u);  // many paths
}

// Hard inference against its plain reference, with ordinary (unsaturated) routers.
TEST(Kernels, FffLeafHardMatchesReference) {
  const int64_t M = 40, K = 2, D = 4, l = 6, C = 24, R = 15, L = 16;  // l: four neurons at a time, and two
  auto x = randn(M * C, 70), rw = randn(K * R * C, 71), rb = randn(K * R, 72), w1 = randn(K * L * l * C, 73),
       b1 = randn(K * L * l, 74), w2 = randn(K * L * l * C, 75), b2 = randn(K * L * C, 76);
  const LeafWeights w{rw.data(), rb.data(), w1.data(), b1.data(), w2.data(), b2.data()};
  std::vector<float> y(M * C), yr(M * C), leaf(M * K), leafr(M * K), hidden(M * K * l);
  leaf_hard_forward(y.data(), leaf.data(), hidden.data(), x.data(), w, LeafShape{K, D, l, C}, M);
  ref::leaf_hard_forward(yr.data(), leafr.data(), x.data(), rw.data(), rb.data(), w1.data(), b1.data(), w2.data(),
                         b2.data(), M, K, D, l, C);
  EXPECT_EQ(leaf, leafr);
  EXPECT_LT(max_rel(y, yr), 1e-5);
  EXPECT_GT(std::set<float>(leaf.begin(), leaf.end()).size(), 8u);  // many paths
  // one token per call (decoding: no parallel region) gives the batch's bits
  std::vector<float> y1(M * C), leaf1(M * K);
  for (int64_t t = 0; t < M; t++)
    leaf_hard_forward(y1.data() + t * C, leaf1.data() + t * K, hidden.data(), x.data() + t * C, w,
                      LeafShape{K, D, l, C}, 1);
  EXPECT_EQ(leaf1, leaf);
  EXPECT_EQ(y1, y);
}
