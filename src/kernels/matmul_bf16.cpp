#include "kernels/matmul_bf16.h"

#include <algorithm>
#include <bit>
#include <map>
#include <tuple>
#include <vector>

#include "core/buffer.h"
#include "core/error.h"
#include "core/timer.h"
#include "kernels/onednn.h"

namespace fw {

namespace {

using dnnl::memory;
using tag = memory::format_tag;

// The three products a linear layer needs, as oneDNN sees them (row-major storage):
//   forward   y(M,N)  = x(M,K)      · w as (K,N): w is stored (N,K), i.e. tag ba
//   input     dx(M,K) = dy(M,N)     · w as (N,K): tag ab
//   weight    dw(N,K) += dy as (N,M): dy stored (M,N), tag ba · x(M,K)
enum class Kind { forward, input_grad, weight_grad };
using Key = std::tuple<Kind, int64_t, int64_t, int64_t>;

dnnl::matmul& primitive(Kind kind, int64_t m, int64_t k, int64_t n, tag a_tag, tag b_tag,
                        bool accumulate) {
  static std::map<Key, dnnl::matmul> cache;  // one primitive per shape, built once
  const Key key{kind, m, k, n};
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  memory::desc a({m, k}, memory::data_type::bf16, a_tag);
  memory::desc b({k, n}, memory::data_type::bf16, b_tag);
  memory::desc c({m, n}, memory::data_type::f32, tag::ab);
  dnnl::primitive_attr attr;
  if (accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, onednn_engine());
  return cache.emplace(key, dnnl::matmul(pd)).first->second;
}

void run(dnnl::matmul& mm, int64_t m, int64_t k, int64_t n, tag a_tag, tag b_tag, const bf16* a,
         const bf16* b, float* c) {
  memory A({{m, k}, memory::data_type::bf16, a_tag}, onednn_engine(), const_cast<bf16*>(a));
  memory B({{k, n}, memory::data_type::bf16, b_tag}, onednn_engine(), const_cast<bf16*>(b));
  memory Cm({{m, n}, memory::data_type::f32, tag::ab}, onednn_engine(), c);
  mm.execute(onednn_stream(), {{DNNL_ARG_SRC, A}, {DNNL_ARG_WEIGHTS, B}, {DNNL_ARG_DST, Cm}});
  onednn_stream().wait();
}

// bf16 copies of the activation operands; grown on first use, then reused, so a
// training step allocates nothing after the first.
bf16* scratch(int which, size_t n) {
  static std::vector<bf16> buf[2];
  if (buf[which].size() < n) buf[which].resize(n);
  return buf[which].data();
}

}  // namespace

void to_bf16(bf16* dst, const float* src, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) dst[i] = round_bf16(src[i]);
}

void matmul_forward_bf16(float* y, const float* x, const bf16* w, int64_t M, int64_t K, int64_t N) {
  bf16* x16 = scratch(0, size_t(M * K));
  to_bf16(x16, x, M * K);
  run(primitive(Kind::forward, M, K, N, tag::ab, tag::ba, false), M, K, N, tag::ab, tag::ba, x16, w, y);
}

void matmul_backward_bf16(float* dx, float* dw, const float* dy, const float* x, const bf16* w,
                          int64_t M, int64_t K, int64_t N) {
  bf16* dy16 = scratch(0, size_t(M * N));
  bf16* x16 = scratch(1, size_t(M * K));
  to_bf16(dy16, dy, M * N);
  to_bf16(x16, x, M * K);
  if (dx) run(primitive(Kind::input_grad, M, N, K, tag::ab, tag::ab, false), M, N, K, tag::ab, tag::ab, dy16, w, dx);
  run(primitive(Kind::weight_grad, N, M, K, tag::ba, tag::ab, true), N, M, K, tag::ba, tag::ab, dy16, x16, dw);
}

double bf16_peak_flops() {
  static double peak = 0;
  if (peak > 0) return peak;
  const int64_t M = 2048, N = 1024, K = 1024;
  std::vector<bf16> a(size_t(M * K), 0x3F00), b(size_t(N * K), 0x3E80);  // 0.5, 0.25
  Buffer c(size_t(M * N));
  auto& mm = primitive(Kind::forward, M, K, N, tag::ab, tag::ba, false);
  const double best = best_seconds([&] { run(mm, M, K, N, tag::ab, tag::ba, a.data(), b.data(), c.data()); });
  peak = 2.0 * M * N * K / best;
  return peak;
}

}  // namespace fw
