// flopwise eval: validation loss of a checkpoint on a data folder; for
// Mixture-of-Depths models also under sampling-time (causal) routing, with the
// causal decisions' accuracy against top-k and the fraction of tokens processed.
#include <cmath>
#include <fstream>

#include "cli/common.h"
#include "core/error.h"
#include "core/system.h"
#include "batching/loader.h"
#include "formats/token_file.h"
#include "tokenizers/tokenizer.h"
#include "infer/causal_eval.h"
#include "infer/routing_trace.h"
#include "nn/flops.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"

namespace fw::cli {

namespace {
struct EvalFlags {
  std::string ckpt, data, trace, fff_usage;
  int64_t tokens = 0;
  CommonFlags common;
};

void run_eval(const EvalFlags& f) {
  f.common.apply();
  LoadedModel lm = load_model(f.ckpt);
  const ModelConfig& mc = lm.config.model;
  const TrainConfig& tc = lm.config.train;
  DataFiles files = find_data_files(f.data);
  const std::string data_tok = data_folder_tokenizer(f.data, mc.vocab_size);
  FW_CHECK(data_tok == "unknown" || lm.tokenizer == "unknown" || data_tok == lm.tokenizer, f.data,
           ": tokenized with '", data_tok, "' but the checkpoint was trained with '", lm.tokenizer, "'");
  TokenLoader val(files.val, mc.vocab_size);
  const int64_t tokens = f.tokens > 0 ? f.tokens : val.size() - 1;
  check_memory(Activations::bytes(mc, tc.micro_batch(), tc.seq_len, false), "eval");
  lm.model->set_matmul_bf16(lm.config.train.matmul_bf16);
  Activations acts(*lm.model, tc.micro_batch(), tc.seq_len, false);
  const EvalResult r = evaluate(*lm.model, acts, val, tokens);
  const double flops = count_flops(mc, tc.seq_len).forward_per_token();
  nlohmann::json j = {{"val_loss", r.loss}, {"tokens", r.tokens}, {"step", lm.step}, {"flops_per_token", flops}};
  std::printf("val loss %.4f over %lld tokens (%s, step %lld); forward %.2f MFLOP/token\n", r.loss,
              (long long)r.tokens, files.val.c_str(), (long long)lm.step, flops / 1e6);
  if (!r.tree_visits.empty()) {  // FFF: dead subtrees show as leaves no token reaches
    const MlpShape s = mc.mlp_shape();
    nlohmann::json used = nlohmann::json::array(), counts = nlohmann::json::array();
    double mean = 0;
    for (int64_t l = 0; l < mc.n_layers; l++) {
      const double u = leaves_used(s, r.tree_visits[size_t(l)].data());
      used.push_back(u);
      counts.push_back(r.tree_visits[size_t(l)]);
      mean += u / double(mc.n_layers);
      std::printf("  block %lld: FFF reaches %.1f%% of its %lld leaves\n", (long long)l, 100 * u,
                  (long long)(s.K << s.D));
    }
    j["fff_leaves_used"] = mean;
    j["fff_leaves_used_per_layer"] = used;
    if (!f.fff_usage.empty()) {
      std::ofstream out(f.fff_usage, std::ios::trunc);
      FW_CHECK(out, f.fff_usage, ": cannot write");
      out << nlohmann::json({{"trees", s.K}, {"depth", s.D}, {"tokens", r.tokens},
                             {"visits_per_layer", counts}}).dump() << "\n";
      FW_CHECK(out, f.fff_usage, ": write failed");
    }
  } else {
    FW_CHECK(f.fff_usage.empty(), "--fff-usage: the model has no FFF (model.mlp = ", name_of(mc.mlp), ")");
  }
  if (mc.mod.enabled || !f.trace.empty()) {
    std::unique_ptr<Tokenizer> tok;
    if (lm.tokenizer != "unknown") tok = make_tokenizer(lm.tokenizer);
    std::unique_ptr<RoutingTrace> trace;
    if (!f.trace.empty()) trace = std::make_unique<RoutingTrace>(f.trace, tok.get());
    int64_t seq = 0;
    const CausalEvalResult c = evaluate_causal(*lm.model, val, tokens, tc.seq_len, [&](const auto& in, const Generator& g) {
      if (trace) trace->record(seq++, 0, in.data(), int64_t(in.size()), 0, g);
    });
    nlohmann::json layers = nlohmann::json::array(), acc = nlohmann::json::array(), proc = nlohmann::json::array();
    double acc_mean = 0, proc_mean = 0, racc_mean = 0, pacc_mean = 0;
    int64_t n = 0;
    std::printf("causal routing (as when sampling): val loss %.4f over %lld tokens\n", c.loss, (long long)c.tokens);
    for (int64_t l = 0; l < mc.n_layers; l++) {
      if (!mc.mod.routed(l)) continue;
      layers.push_back(l);
      acc.push_back(r.causal_accuracy[size_t(l)]);
      proc.push_back(c.processed_fraction[size_t(l)]);
      acc_mean += r.causal_accuracy[size_t(l)];
      racc_mean += r.router_accuracy[size_t(l)];
      pacc_mean += r.predictor_accuracy[size_t(l)];
      proc_mean += c.processed_fraction[size_t(l)];
      n++;
      std::printf("  block %lld: causal decisions agree with top-k on %.1f%% of tokens (router %.1f%%, predictor %.1f%%); "
                  "processes %.1f%% when sampling\n", (long long)l, 100 * r.causal_accuracy[size_t(l)],
                  100 * r.router_accuracy[size_t(l)], 100 * r.predictor_accuracy[size_t(l)],
                  100 * c.processed_fraction[size_t(l)]);
    }
    j["val_loss_causal"] = c.loss;
    if (n > 0) {
      j["causal_accuracy"] = acc_mean / double(n);
      if (std::isfinite(racc_mean)) j["router_accuracy"] = racc_mean / double(n);
      if (std::isfinite(pacc_mean)) j["predictor_accuracy"] = pacc_mean / double(n);
      j["processed_fraction"] = proc_mean / double(n);
      j["routed_layers"] = layers;
      j["causal_accuracy_per_layer"] = acc;
      j["processed_fraction_per_layer"] = proc;
    }
  }
  if (f.common.json) print_json(j);
}
}  // namespace

void register_eval(CLI::App& app) {
  auto f = std::make_shared<EvalFlags>();
  auto* sub = app.add_subcommand("eval", "validation loss of a checkpoint (MoD: top-k and causal routing)");
  sub->add_option("--ckpt", f->ckpt, "run folder or model.safetensors")->required();
  sub->add_option("--data", f->data, "data folder holding val.bin")->required();
  sub->add_option("--tokens", f->tokens, "validation tokens (default: the whole file, in whole batches)");
  sub->add_option("--trace", f->trace, "write per-token Mixture-of-Depths routing decisions (JSON lines)");
  sub->add_option("--fff-usage", f->fff_usage, "write the tokens reaching each FFF neuron, per layer (JSON)");
  f->common.add(sub);
  sub->callback([f]() { run_eval(*f); });
}

}  // namespace fw::cli
