// Decoding's matrix products have few rows (one per sequence of a batched step). This
// times y (M,N) = x (M,K) · w (N,K)ᵀ at such shapes three ways: oneDNN's sgemm as
// kernels/matmul.cpp calls it (packing the weights inside every call), a matmul
// primitive on the plain row-major weights, and one whose weights were reordered once
// into the layout it prefers (what an inference path that packs at load would do).
//   build/bench_small_matmul            (OMP_NUM_THREADS as for flopwise)
#include <dnnl.hpp>

#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

using namespace dnnl;

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main() {
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  std::printf("| M | K | N | sgemm us (GFLOP/s) | matmul, plain weights us | matmul, packed once us (GFLOP/s) |\n"
              "|---:|---:|---:|---:|---:|---:|\n");
  for (int N : {768, 1024, 2048})
    for (int M : {1, 4, 16}) {
      const int K = 256, reps = 2000;
      std::vector<float> x(size_t(M) * K), w(size_t(N) * K), y(size_t(M) * N);
      std::mt19937 g(1);
      std::normal_distribution<float> d;
      for (auto& v : x) v = d(g);
      for (auto& v : w) v = d(g);
      double t0 = now();
      for (int r = 0; r < reps; r++) dnnl_sgemm('N', 'T', M, N, K, 1.f, x.data(), K, w.data(), K, 0.f, y.data(), N);
      const double sgemm = (now() - t0) / reps;
      const memory::desc a({M, K}, memory::data_type::f32, memory::format_tag::ab);
      const memory::desc c({M, N}, memory::data_type::f32, memory::format_tag::ab);
      const memory::desc plain_w({K, N}, memory::data_type::f32, memory::format_tag::ba);  // w (N,K) row-major
      memory am(a, eng, x.data()), wm(plain_w, eng, w.data()), cm(c, eng, y.data());
      matmul plain(matmul::primitive_desc(matmul::desc(a, plain_w, c), eng));
      t0 = now();
      for (int r = 0; r < reps; r++) plain.execute(s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, cm}});
      s.wait();
      const double plain_s = (now() - t0) / reps;
      const memory::desc any_w({K, N}, memory::data_type::f32, memory::format_tag::any);
      const matmul::primitive_desc pd(matmul::desc(a, any_w, c), eng);
      matmul packed(pd);
      memory pw(pd.weights_desc(), eng);
      reorder(wm, pw).execute(s, wm, pw);
      s.wait();
      t0 = now();
      for (int r = 0; r < reps; r++) packed.execute(s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, pw}, {DNNL_ARG_DST, cm}});
      s.wait();
      const double packed_s = (now() - t0) / reps;
      const double flop = 2.0 * M * N * K;
      std::printf("| %d | %d | %d | %.2f (%.0f) | %.2f | %.2f (%.0f) |\n", M, K, N, sgemm * 1e6, flop / sgemm / 1e9,
                  plain_s * 1e6, packed_s * 1e6, flop / packed_s / 1e9);
    }
}
