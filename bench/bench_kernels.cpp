// Google Benchmark of the kernels on the bench config's shapes (d=512, seq 256,
// batch 8, 8 heads). Reports FLOP/s for matrix work and bytes/s for element-wise
// work; the plain reference of GELU runs beside the vectorised one.
//   build/bench_kernels [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <type_traits>
#include <vector>

#include "core/rng.h"
#include "core/threads.h"
#include "infer/sampling.h"
#include "kernels/attention.h"
#include "kernels/gelu.h"
#include "kernels/matmul.h"
#include "kernels/matmul_bf16.h"
#include "kernels/reference.h"
#include "kernels/rmsnorm.h"
#include "kernels/row_ops.h"

using namespace fw;

namespace {
constexpr int64_t B = 8, T = 256, C = 512, H = 8, hd = C / H, F = 4 * C, BT = B * T;

std::vector<float> randn(size_t n) {
  Rng r(1);
  std::vector<float> v(n);
  for (auto& x : v) x = r.normal();
  return v;
}

void BM_MatmulForward(benchmark::State& s) {  // (BT, C) x (N, C)^T
  const int64_t N = s.range(0);
  auto x = randn(BT * C), w = randn(N * C);
  std::vector<float> y(BT * N);
  for (auto _ : s) matmul_forward(y.data(), x.data(), w.data(), BT, C, N);
  s.counters["FLOP/s"] = benchmark::Counter(2.0 * BT * C * N, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MatmulForward)->Arg(3 * C)->Arg(F)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MatmulBackward(benchmark::State& s) {
  const int64_t N = s.range(0);
  auto x = randn(BT * C), w = randn(N * C), dy = randn(BT * N);
  std::vector<float> dx(BT * C), dw(N * C);
  for (auto _ : s) matmul_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), BT, C, N);
  s.counters["FLOP/s"] = benchmark::Counter(4.0 * BT * C * N, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MatmulBackward)->Arg(3 * C)->Arg(F)->Unit(benchmark::kMillisecond)->UseRealTime();

// bf16 operands (the activation rounded on the way in, as in training), fp32 result.
void BM_MatmulForwardBf16(benchmark::State& s) {
  const int64_t N = s.range(0);
  auto x = randn(BT * C), w = randn(N * C);
  std::vector<bf16> w16(w.size());
  to_bf16(w16.data(), w.data(), int64_t(w.size()));
  std::vector<float> y(BT * N);
  for (auto _ : s) matmul_forward_bf16(y.data(), x.data(), w16.data(), BT, C, N);
  s.counters["FLOP/s"] = benchmark::Counter(2.0 * BT * C * N, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MatmulForwardBf16)->Arg(3 * C)->Arg(F)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MatmulBackwardBf16(benchmark::State& s) {
  const int64_t N = s.range(0);
  auto x = randn(BT * C), w = randn(N * C), dy = randn(BT * N);
  std::vector<bf16> w16(w.size());
  to_bf16(w16.data(), w.data(), int64_t(w.size()));
  std::vector<float> dx(BT * C), dw(N * C);
  for (auto _ : s) matmul_backward_bf16(dx.data(), dw.data(), dy.data(), x.data(), w16.data(), BT, C, N);
  s.counters["FLOP/s"] = benchmark::Counter(4.0 * BT * C * N, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MatmulBackwardBf16)->Arg(3 * C)->Arg(F)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_AttentionForward(benchmark::State& s) {
  auto q = randn(BT * C), k = randn(BT * C), v = randn(BT * C);
  std::vector<float> y(BT * C), P(B * H * T * T);
  for (auto _ : s) attention_forward(y.data(), P.data(), q.data(), KvSlot{k.data(), v.data(), T}, B, H, T, hd, T);
  s.counters["FLOP/s"] = benchmark::Counter(4.0 * B * H * T * T * hd, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_AttentionForward)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_AttentionBackward(benchmark::State& s) {
  auto q = randn(BT * C), k = randn(BT * C), v = randn(BT * C), dy = randn(BT * C);
  std::vector<float> y(BT * C), P(B * H * T * T), dq(BT * C), dk(BT * C), dv(BT * C);
  std::vector<float> scratch(size_t(num_threads()) * T * T);
  attention_forward(y.data(), P.data(), q.data(), KvSlot{k.data(), v.data(), T}, B, H, T, hd, T);
  for (auto _ : s)
    attention_backward(dq.data(), dk.data(), dv.data(), scratch.data(), dy.data(), P.data(), q.data(), k.data(), v.data(), B, H, T, hd);
  s.counters["FLOP/s"] = benchmark::Counter(8.0 * B * H * T * T * hd, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_AttentionBackward)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_GeluForward(benchmark::State& s) {
  auto x = randn(BT * F);
  std::vector<float> y(BT * F);
  for (auto _ : s) gelu_forward(y.data(), x.data(), BT * F);
  s.counters["bytes/s"] = benchmark::Counter(8.0 * BT * F, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_GeluForward)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_GeluReference(benchmark::State& s) {
  auto x = randn(BT * F);
  std::vector<float> y(BT * F);
  for (auto _ : s)
    for (int64_t i = 0; i < BT * F; i++) y[i] = ref::gelu(x[i]);
  s.counters["bytes/s"] = benchmark::Counter(8.0 * BT * F, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_GeluReference)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_RmsNormForward(benchmark::State& s) {
  auto x = randn(BT * C), w = randn(C);
  std::vector<float> y(BT * C), r(BT);
  for (auto _ : s) rmsnorm_forward(y.data(), r.data(), x.data(), w.data(), BT, C);
  s.counters["bytes/s"] = benchmark::Counter(8.0 * BT * C, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_RmsNormForward)->Unit(benchmark::kMillisecond)->UseRealTime();

// The fast feedforward kernels' unit of work (kernels/row_ops.h) at the quick-start
// FFF layer's width (C = 256, a row is 1 KiB): one thread, each call against rows
// picked at random from a set of `rows` rows (fixed before timing), as a tree walk
// meets them. 16 rows (16 KiB) stay in L1; 1008 rows are the layer's whole w_in
// (1 MiB, L2's size). Beside them, the same width's dense product (oneDNN, one
// thread, 2048 x 256 x 1008): the rate those rows would get in a matrix product.
constexpr int64_t kRowWidth = 256;

// `rows` rows of random values in the precision W (float, or bf16 as in bf16 mode)
template <typename W>
std::vector<W> random_matrix(int64_t rows) {
  auto w = randn(rows * kRowWidth);
  if constexpr (std::is_same_v<W, float>) {
    return w;
  } else {
    std::vector<bf16> h(w.size());
    to_bf16(h.data(), w.data(), int64_t(w.size()));
    return h;
  }
}

template <typename W>
std::vector<const W*> random_rows(const std::vector<W>& w, int64_t rows, int64_t n) {
  Rng r(7);
  std::vector<const W*> out(static_cast<size_t>(n));
  for (auto& p : out) p = w.data() + int64_t(r.next_u64() % uint64_t(rows)) * kRowWidth;
  return out;
}

template <typename W>
void BM_RowDot4(benchmark::State& s) {  // a token's vector against 4 rows (four trees, one level)
  const int threads = num_threads();
  set_num_threads(1);
  const int64_t rows = s.range(0), calls = 4096;
  const auto w = random_matrix<W>(rows), x = random_matrix<W>(32);
  const auto picked = random_rows(w, rows, 4 * calls);
  float out[4];
  int64_t i = 0;
  for (auto _ : s) {
    row_dot4(x.data() + (i % 32) * kRowWidth, picked.data() + 4 * (i % calls), kRowWidth, out);
    benchmark::DoNotOptimize(out);
    i++;
  }
  s.counters["FLOP/s"] = benchmark::Counter(2.0 * 4 * kRowWidth, benchmark::Counter::kIsIterationInvariantRate);
  set_num_threads(threads);
}
BENCHMARK(BM_RowDot4<float>)->Arg(16)->Arg(1008);
BENCHMARK(BM_RowDot4<bf16>)->Arg(16)->Arg(1008);

template <typename W>
void BM_RowsCombine(benchmark::State& s) {  // a token's output: y = Σ g·row over 96 rows (16 trees of depth 5)
  const int threads = num_threads();
  set_num_threads(1);
  const int64_t rows = s.range(0), visits = 96, calls = 256;
  const auto w = random_matrix<W>(rows);
  const auto g = randn(visits);
  const auto picked = random_rows(w, rows, visits * calls);
  std::vector<float> y(kRowWidth);
  int64_t i = 0;
  for (auto _ : s) {
    rows_combine(y.data(), g.data(), picked.data() + visits * (i % calls), visits, kRowWidth, false);
    benchmark::DoNotOptimize(y.data());
    i++;
  }
  s.counters["FLOP/s"] = benchmark::Counter(2.0 * visits * kRowWidth, benchmark::Counter::kIsIterationInvariantRate);
  set_num_threads(threads);
}
BENCHMARK(BM_RowsCombine<float>)->Arg(16)->Arg(1008);
BENCHMARK(BM_RowsCombine<bf16>)->Arg(16)->Arg(1008);

void BM_MatmulAtRowWidth(benchmark::State& s) {  // (2048, 256) x (1008, 256)^T on one thread
  const int threads = num_threads();
  set_num_threads(1);
  const int64_t M = 2048, N = 1008;
  auto x = randn(M * kRowWidth), w = randn(N * kRowWidth);
  std::vector<float> y(M * N);
  for (auto _ : s) matmul_forward(y.data(), x.data(), w.data(), M, kRowWidth, N);
  s.counters["FLOP/s"] = benchmark::Counter(2.0 * M * kRowWidth * N, benchmark::Counter::kIsIterationInvariantRate);
  set_num_threads(threads);
}
BENCHMARK(BM_MatmulAtRowWidth)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MatmulAtRowWidthBf16(benchmark::State& s) {  // the same with bf16 weights (train.matmul_bf16)
  const int threads = num_threads();
  set_num_threads(1);
  const int64_t M = 2048, N = 1008;
  const auto x = randn(M * kRowWidth);
  const auto w = random_matrix<bf16>(N);
  std::vector<float> y(M * N);
  for (auto _ : s) matmul_forward_bf16(y.data(), x.data(), w.data(), M, kRowWidth, N);
  s.counters["FLOP/s"] = benchmark::Counter(2.0 * M * kRowWidth * N, benchmark::Counter::kIsIterationInvariantRate);
  set_num_threads(threads);
}
BENCHMARK(BM_MatmulAtRowWidthBf16)->Unit(benchmark::kMillisecond)->UseRealTime();

// One draw with temperature 0.8 and top-p 0.95 (the server benchmark's) from logits of
// V tokens drawn normal with standard deviation spread/10: flat (10: the top-p set is
// most of V) to peaked (60: a few tokens), at the byte, demo (SentencePiece 2048) and
// GPT-2 vocabularies.
void BM_SampleToken(benchmark::State& s) {
  const int64_t V = s.range(0);
  std::vector<float> base = randn(size_t(V)), logits = base;
  for (auto& x : base) x *= float(s.range(1)) / 10;
  const SamplingParams p{0.8, 0, 0.95};
  Rng rng(7);
  for (auto _ : s) {
    logits = base;
    benchmark::DoNotOptimize(sample_token(logits.data(), V, p, rng));
  }
}
BENCHMARK(BM_SampleToken)->ArgsProduct({{256, 2048, 50257}, {10, 30, 60}})->Unit(benchmark::kMicrosecond);
}  // namespace

BENCHMARK_MAIN();
