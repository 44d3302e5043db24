// Google Benchmark of the kernels on the bench config's shapes (d=512, seq 256,
// batch 8, 8 heads). Reports FLOP/s for matrix work and bytes/s for element-wise
// work; the plain reference of GELU runs beside the vectorised one.
//   build/bench_kernels [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <vector>

#include "core/rng.h"
#include "core/threads.h"
#include "kernels/attention.h"
#include "kernels/gelu.h"
#include "kernels/matmul.h"
#include "kernels/matmul_bf16.h"
#include "kernels/reference.h"
#include "kernels/rmsnorm.h"

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

}  // namespace

BENCHMARK_MAIN();
