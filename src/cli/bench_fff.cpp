// flopwise bench fff: one fast feedforward layer (K trees of depth D) against a dense
// GELU MLP (through oneDNN), by default of the same width K·(2^(D+1)−1), side by side:
// forward time per token at batch 1 (decode: one token per call, each a different
// token, so the trees take different paths) and batched (prefill), forward + backward
// of the batch (training: the input and weight gradients), the ratios, and
// the FLOP limit: dense width / K(D+1), which is (2^(D+1)−1)/(D+1) at equal width. Weights stay wherever the caches keep them, the
// same for both layers; the bytes of weights each touches per token are reported.
#include <cstdio>

#include "cli/common.h"
#include "core/buffer.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/system.h"
#include "core/threads.h"
#include "core/timer.h"
#include "kernels/fff.h"
#include "kernels/gelu.h"
#include "kernels/matmul.h"
#include "kernels/matmul_bf16.h"
#include "nn/linear.h"

namespace fw::cli {

namespace {
struct FffBenchFlags {
  int64_t d = 768, trees = 1, depth = 11, batch = 16384, batch1_tokens = 32, dense_width = 0;
  std::string preset;
  bool bf16 = false, train = true;
  CommonFlags common;
};

// Deterministic values uniform in [-a, a], filled in parallel (the GPT-3 preset fills
// billions).
void fill_uniform(float* p, size_t n, float a, uint64_t seed) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) {
    const uint64_t z = hash64(seed * 0x100000000ull + i);
    p[i] = a * (float(double(z >> 40) / double(1ull << 24)) * 2.0f - 1.0f);
  }
}

// Best time of f over at least `runs` runs and 0.4 s, after one warm-up run.
template <typename F>
double best_of(F&& f, int runs) {
  f();
  double best = 1e30;
  const double start = now_seconds();
  for (int r = 0; r < runs || now_seconds() - start < 0.4; r++) {
    const double t0 = now_seconds();
    f();
    best = std::min(best, now_seconds() - t0);
  }
  return best;
}

void run_bench_fff(FffBenchFlags f) {
  f.common.apply();
  if (f.preset == "gpt3") {  // GPT-3's feedforward: d 12288, 4·d = 49152 neurons; FFF depth 15
    f.d = 12288;
    f.dense_width = 49152;
    f.trees = 1;
    f.depth = 15;
    f.batch = 64;
    f.batch1_tokens = 4;
    f.train = false;  // gradients would double 11 GB of weights
  } else {
    FW_CHECK(f.preset.empty(), "bench fff: --preset '", f.preset, "' is not known (gpt3)");
  }
  FW_CHECK(f.d >= 1 && f.trees >= 1 && f.depth >= 0 && f.depth <= 24 && f.batch >= 1 && f.batch1_tokens >= 1,
           "bench fff: --d, --trees, --batch, --batch1-tokens must be >= 1 and --depth in [0, 24]");
  const TreeShape s{f.trees, f.depth, f.d};
  FW_CHECK(f.dense_width >= 0, "bench fff: --dense-width must be >= 0 (0: the FFF's neuron count)");
  const int64_t C = f.d, KN = s.K * s.nodes(), F = f.dense_width > 0 ? f.dense_width : KN, M = f.batch,
                P = s.K * s.path();
  const int64_t M1 = f.batch1_tokens, Mx = std::max(M, M1);
  // weights: dense fc (F, C), proj (C, F); tree w_in, w_out (K·N, C), b (K·N)
  const double weight_bytes = 4.0 * double(2 * F * C + 2 * KN * C + KN);
  const double act_bytes = 4.0 * double(3 * Mx * F + 5 * Mx * C + 3 * Mx * P) + (f.train ? weight_bytes : 0.0);
  check_memory(size_t(weight_bytes + act_bytes), "bench fff");
  note(str("bench fff: d=", C, " K=", s.K, " D=", s.D, " (", KN, " neurons, ", P, " per token); weights ",
           human_bytes(weight_bytes)));
  Buffer fc(size_t(F * C)), proj(size_t(C * F)), w_in(size_t(KN * C)), w_out(size_t(KN * C)), b(static_cast<size_t>(KN));
  Buffer x(size_t(Mx * C)), y(size_t(Mx * C)), h(size_t(Mx * F)), g(size_t(Mx * F)), path(size_t(Mx * P)),
      lam(size_t(Mx * P));
  const float a = 1.0f / std::sqrt(float(C));  // unit-scale λ, so both branches are taken
  fill_uniform(fc.data(), fc.size(), a, 1);
  fill_uniform(proj.data(), proj.size(), a, 2);
  fill_uniform(w_in.data(), w_in.size(), a * 1.7f, 3);
  fill_uniform(w_out.data(), w_out.size(), a, 4);
  fill_uniform(b.data(), b.size(), 0.1f, 5);
  fill_uniform(x.data(), x.size(), 1.7f, 6);
  // --bf16: both layers with bf16 copies of their weights (train.matmul_bf16)
  std::vector<bf16> fc16, proj16, w_in16, w_out16;
  if (f.bf16) {
    for (auto [src, dst] : {std::pair{&fc, &fc16}, {&proj, &proj16}, {&w_in, &w_in16}, {&w_out, &w_out16}}) {
      dst->resize(src->size());
      to_bf16(dst->data(), src->data(), int64_t(src->size()));
    }
  }
  auto dense = [&](const float* in, float* out, int64_t m) {
    linear_forward(h.data(), in, fc.data(), f.bf16 ? fc16.data() : nullptr, m, C, F);
    gelu_forward(g.data(), h.data(), m * F);
    linear_forward(out, g.data(), proj.data(), f.bf16 ? proj16.data() : nullptr, m, F, C);
  };
  auto fff = [&](const float* in, float* out, int64_t m) {
    if (f.bf16)
      fff_forward(out, path.data(), lam.data(), in, w_in16.data(), b.data(), w_out16.data(), s, m);
    else
      fff_forward(out, path.data(), lam.data(), in, w_in.data(), b.data(), w_out.data(), s, m);
  };
  // batch 1: M1 different tokens, one call each
  const int runs = C > 4096 ? 3 : 10;
  const double dense1 = best_of([&] { for (int64_t t = 0; t < M1; t++) dense(x.data() + t * C, y.data(), 1); }, runs) / double(M1);
  const double fff1 = best_of([&] { for (int64_t t = 0; t < M1; t++) fff(x.data() + t * C, y.data(), 1); }, runs) / double(M1);
  const double denseM = best_of([&] { dense(x.data(), y.data(), M); }, runs) / double(M);
  const double fffM = best_of([&] { fff(x.data(), y.data(), M); }, runs) / double(M);
  // training: forward and backward of the batch (gradients accumulate into dw buffers)
  const size_t grads = f.train ? 1 : 0;  // gradient buffers only when measured
  Buffer dy(grads * size_t(Mx * C)), dx(grads * size_t(Mx * C)), dh(grads * size_t(Mx * F)), dfc(grads * fc.size()),
      dproj(grads * proj.size()), dw_in(grads * w_in.size()), dw_out(grads * w_out.size()), db(grads * b.size()),
      dlam(grads * size_t(Mx * P));
  if (f.train) fill_uniform(dy.data(), dy.size(), 1.0f, 7);
  auto dense_train = [&] {
    dense(x.data(), y.data(), M);
    linear_backward(dh.data(), dproj.data(), dy.data(), g.data(), proj.data(), f.bf16 ? proj16.data() : nullptr, M,
                    F, C);
    gelu_backward(dh.data(), dh.data(), h.data(), M * F);
    linear_backward(dx.data(), dfc.data(), dh.data(), x.data(), fc.data(), f.bf16 ? fc16.data() : nullptr, M, C, F);
  };
  auto fff_train = [&] {
    fff(x.data(), y.data(), M);
    if (f.bf16)
      fff_backward(dx.data(), dw_in.data(), db.data(), dw_out.data(), dlam.data(), dy.data(), x.data(), path.data(),
                   lam.data(), w_in16.data(), w_out16.data(), s, M);
    else
      fff_backward(dx.data(), dw_in.data(), db.data(), dw_out.data(), dlam.data(), dy.data(), x.data(), path.data(),
                   lam.data(), w_in.data(), w_out.data(), s, M);
  };
  const double denseT = f.train ? best_of(dense_train, runs) / double(M) : 0.0;
  const double fffT = f.train ? best_of(fff_train, runs) / double(M) : 0.0;
  const double limit = double(F) / double(P);  // dense neurons per FFF neuron used
  const double wb = f.bf16 ? 2.0 : 4.0;  // bytes per weight
  const double touched_dense = wb * double(2 * F * C), touched_fff = wb * double(P * 2 * C) + 4.0 * double(P);
  nlohmann::json j = {{"d", C}, {"trees", s.K}, {"depth", s.D}, {"neurons", KN}, {"neurons_per_token", P},
                      {"dense_width", F},
                      {"batch", M}, {"batch1_tokens", M1}, {"precision", f.bf16 ? "bf16" : "fp32"}, {"threads", num_threads()}, {"cpu", cpu_model_name()},
                      {"dense_us_per_token_batch1", 1e6 * dense1}, {"fff_us_per_token_batch1", 1e6 * fff1},
                      {"dense_us_per_token_batched", 1e6 * denseM}, {"fff_us_per_token_batched", 1e6 * fffM},
                      {"dense_us_per_token_train", 1e6 * denseT}, {"fff_us_per_token_train", 1e6 * fffT},
                      {"speedup_batch1", dense1 / fff1}, {"speedup_batched", denseM / fffM},
                      {"speedup_train", f.train ? denseT / fffT : 0.0}, {"limit", limit},
                      {"dense_weight_bytes_per_token_batch1", touched_dense},
                      {"fff_weight_bytes_per_token", touched_fff}};
  if (f.common.json) {
    print_json(j);
    return;
  }
  std::printf("| d=%lld, K=%lld, D=%lld (%lld neurons), %s | dense MLP of %lld (oneDNN) | FFF (%lld neurons/token) | speedup | FLOP limit |\n",
              (long long)C, (long long)s.K, (long long)s.D, (long long)KN, f.bf16 ? "bf16" : "fp32", (long long)F,
              (long long)P);
  std::printf("|---|---:|---:|---:|---:|\n");
  std::printf("| batch 1: us/token | %.2f | %.3f | %.1fx | %.0fx |\n", 1e6 * dense1, 1e6 * fff1, dense1 / fff1, limit);
  std::printf("| batch %lld: us/token | %.3f | %.3f | %.1fx | %.0fx |\n", (long long)M, 1e6 * denseM, 1e6 * fffM,
              denseM / fffM, limit);
  if (f.train)
    std::printf("| batch %lld, forward + backward: us/token | %.3f | %.3f | %.1fx | %.0fx |\n", (long long)M,
                1e6 * denseT, 1e6 * fffT, denseT / fffT, limit);
  std::printf("| weights touched per token (batch 1) | %s | %s | | |\n", human_bytes(touched_dense).c_str(),
              human_bytes(touched_fff).c_str());
}
}  // namespace

void add_bench_fff(CLI::App* bench) {
  auto f = std::make_shared<FffBenchFlags>();
  auto* sub = bench->add_subcommand("fff", "one FFF layer against the dense MLP of the same width, batch 1 and batched");
  sub->add_option("--d", f->d, "model width");
  sub->add_option("--trees", f->trees, "K, trees");
  sub->add_option("--depth", f->depth, "D, tree depth (2^(D+1)-1 neurons per tree)");
  sub->add_option("--batch", f->batch, "tokens in the batched measurement");
  sub->add_option("--dense-width", f->dense_width, "neurons of the dense MLP (default: the FFF's K(2^(D+1)-1))");
  sub->add_option("--batch1-tokens", f->batch1_tokens, "distinct tokens fed one at a time in the batch-1 measurement");
  sub->add_flag("--bf16", f->bf16, "both layers with bf16 weights (as train.matmul_bf16), fp32 sums");
  sub->add_flag("--train,!--no-train", f->train, "also time forward + backward of the batch (default; not gpt3)");
  sub->add_option("--preset", f->preset, "gpt3: d=12288, dense width 49152 vs FFF depth 15, batch 64");
  f->common.add(sub);
  sub->callback([f]() { run_bench_fff(*f); });
}

}  // namespace fw::cli
