// flopwise flops: the exact FLOP count of a model config (Chinchilla App. F, with MoD
// capacity and FFF trees), term by term, next to 6N, and its parameter counts.
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "nn/flops.h"
#include "nn/model.h"

namespace fw::cli {

namespace {
struct FlopsFlags {
  ConfigFlags config;
  int64_t seq_len = 0;
  CommonFlags common;
};

void run_flops(const FlopsFlags& f) {
  f.common.apply();
  const Config cfg = f.config.build();
  const ModelConfig& m = cfg.model;
  const int64_t s = f.seq_len > 0 ? f.seq_len : cfg.train.seq_len;
  FW_CHECK(s >= 1 && s <= m.max_seq_len, "flops: --seq-len ", s, " must be in [1, model.max_seq_len = ",
           m.max_seq_len, "]");
  const nlohmann::json j = flop_report(m, s, cfg.train.mask_rate);
  const FlopCount fc = count_flops(m, s, cfg.train.mask_rate);
  const double n = j["params"], emb = n - j["params_without_embeddings"].get<double>();
  const double six_n = j["six_n_per_token"], per_seq = j["forward_flops_per_seq"];
  if (f.common.json) {
    print_json(j);
    return;
  }
  std::printf("model: %.0f parameters, %.0f without embeddings (d=%lld, %lld layers, %lld heads, mlp %s%s)\n", n,
              n - emb, (long long)m.d_model, (long long)m.n_layers, (long long)m.n_heads, name_of(m.mlp),
              m.mod.enabled ? ", MoD" : "");
  std::printf("| forward FLOPs per token (sequence of %lld) | MFLOP |\n|---|---:|\n", (long long)s);
  for (const auto& [name, value] : fc.terms())
    if (value != 0) std::printf("| %s | %.4f |\n", name, value / double(s) / 1e6);
  std::printf("| forward total (exact) | %.4f |\n", fc.forward_per_token() / 1e6);
  std::printf("| training (3 x forward%s) | %.4f |\n", m.mlp == MlpKind::fff_leaf ? ", soft FFF leaves" : "",
              fc.train_per_token() / 1e6);
  std::printf("| 6N | %.4f |\n", six_n / 1e6);
  std::printf("exact training FLOPs are %.3f x 6N; per sequence: %.4g forward, %.4g training\n",
              fc.train_per_token() / six_n, per_seq, fc.train_per_token() * double(s));
}
}  // namespace

void register_flops(CLI::App& app) {
  auto f = std::make_shared<FlopsFlags>();
  auto* sub = app.add_subcommand("flops", "exact FLOPs per token of a model config, next to 6N");
  f->config.add(sub);
  sub->add_option("--seq-len", f->seq_len, "sequence length (default: train.seq_len)");
  f->common.add(sub);
  sub->callback([f]() { run_flops(*f); });
}

}  // namespace fw::cli
