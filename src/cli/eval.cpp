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
  std::string ckpt, data, trace, fff_usage, task;
  int64_t tokens = 0;
  CommonFlags common;
};

// What eval found, computed once and rendered twice (lines for people, JSON for tools).
struct EvalReport {
  std::string val_file;
  int64_t step = 0;
  double flops_per_token = 0;
  EvalResult topk;                  // the training forward's routing (top-k)
  MlpShape mlp;
  std::vector<double> leaves_used;  // FFF, per layer: fraction of leaves some token reached
  bool has_causal = false;          // MoD (or a trace was asked for): the sampler's routing
  CausalEvalResult causal{};        // by the trained rule (σ(r) > 0.5)
  bool calibrated = false;          // the checkpoint has thresholds (infer/calibration.h)
  CausalEvalResult causal_calibrated{};  // by them
  double capacity_share = 0;        // k/T: the share top-k processes in training
  std::vector<int64_t> routed_layers;
};

// The mean of v over the routed layers.
double routed_mean(const EvalReport& r, const std::vector<double>& v) {
  double sum = 0;
  for (int64_t l : r.routed_layers) sum += v[size_t(l)];
  return sum / double(r.routed_layers.size());
}

void write_fff_usage(const std::string& path, const EvalReport& r) {
  std::ofstream out(path, std::ios::trunc);
  FW_CHECK(out, path, ": cannot write");
  out << nlohmann::json({{"trees", r.mlp.K}, {"depth", r.mlp.D}, {"tokens", r.topk.tokens},
                         {"visits_per_layer", r.topk.tree_visits}}).dump() << "\n";
  FW_CHECK(out, path, ": write failed");
}

EvalReport compute_eval(const EvalFlags& f, LoadedModel lm) {
  const ModelConfig& mc = lm.config.model;
  const TrainConfig& tc = lm.config.train;
  FW_CHECK(!f.data.empty(), "eval: --data DIR is required (the validation text of a language model)");
  const std::string val_file = validation_file_for(lm, f.data);
  TokenLoader val(val_file, mc.text_vocab());
  const int64_t tokens = f.tokens > 0 ? f.tokens : val.size() - 1;
  check_memory(Activations::bytes(mc, tc.micro_batch(), tc.seq_len, false), "eval");
  lm.model->set_matmul_bf16(tc.bf16());
  Activations acts(*lm.model, tc.micro_batch(), tc.seq_len, false);
  EvalReport r;
  r.val_file = val_file;
  r.step = lm.step;
  r.flops_per_token = count_flops(mc, tc.seq_len, tc.mask_rate).forward_per_token();
  r.topk = evaluate(*lm.model, acts, val, tokens, 0, 1, tc.mask_rate);
  r.mlp = mc.mlp_shape();
  for (const auto& visits : r.topk.tree_visits) r.leaves_used.push_back(leaves_used(r.mlp, visits.data()));
  if (!f.fff_usage.empty()) {
    FW_CHECK(!r.leaves_used.empty(), "--fff-usage: the model has no FFF (model.mlp = ", name_of(mc.mlp), ")");
    write_fff_usage(f.fff_usage, r);
  }
  // the causal (sampling) routing: decoders only; an encoder routes by top-k, as trained
  FW_CHECK(f.trace.empty() || !mc.encoder(), "--trace: an encoder has no causal routing to trace");
  if ((mc.mod.enabled && !mc.encoder()) || !f.trace.empty()) {
    std::unique_ptr<Tokenizer> tok;
    if (lm.tokenizer != "unknown") tok = make_tokenizer(lm.tokenizer);
    std::unique_ptr<RoutingTrace> trace;
    if (!f.trace.empty()) trace = std::make_unique<RoutingTrace>(f.trace, tok.get());
    int64_t seq = 0;
    r.has_causal = true;
    r.calibrated = !lm.model->calibration.empty();
    const std::function<void(const std::vector<int32_t>&, const Generator&)> record = [&](const auto& in, const Generator& g) {
      if (trace) trace->record(seq++, 0, in.data(), int64_t(in.size()), 0, g);
    };
    // the trace follows sampling's default routing: calibrated when the checkpoint is
    r.causal = evaluate_causal(*lm.model, val, tokens, tc.seq_len, lm.model->causal_thresholds(false),
                               r.calibrated ? nullptr : record);  // std::function: empty or the recorder
    if (r.calibrated)
      r.causal_calibrated = evaluate_causal(*lm.model, val, tokens, tc.seq_len, lm.model->causal_thresholds(true), record);
    if (mc.mod.enabled) r.capacity_share = double(mc.mod.k(tc.seq_len)) / double(tc.seq_len);
    for (int64_t l = 0; l < mc.n_layers; l++)
      if (mc.mod.routed(l)) r.routed_layers.push_back(l);
  }
  return r;
}

void print_eval(const EvalReport& r) {
  std::printf("val loss %.4f over %lld tokens (%s%s, step %lld); forward %.2f MFLOP/token\n", r.topk.loss,
              (long long)r.topk.tokens, r.val_file.c_str(), r.topk.whole_file ? ", the whole file: fewer tokens than asked" : "",
              (long long)r.step, r.flops_per_token / 1e6);
  if (std::isfinite(r.topk.accuracy))  // encoders: the loss above is masked-LM's, on a fixed masking
    std::printf("masked-LM accuracy %.4f (the original token most likely at the chosen positions)\n", r.topk.accuracy);
  for (size_t l = 0; l < r.leaves_used.size(); l++)  // FFF: dead subtrees show as leaves no token reaches
    std::printf("  block %zu: FFF reaches %.1f%% of its %lld leaves\n", l, 100 * r.leaves_used[l],
                (long long)(r.mlp.K << r.mlp.D));
  if (!r.has_causal) return;
  std::printf("causal routing (as when sampling): val loss %.4f over %lld tokens by the trained rule", r.causal.loss,
              (long long)r.causal.tokens);
  if (r.calibrated) std::printf(", %.4f calibrated\n", r.causal_calibrated.loss);
  else if (!r.routed_layers.empty()) std::printf(" (not calibrated: flopwise calibrate)\n");
  else std::printf("\n");
  for (int64_t l : r.routed_layers) {
    const size_t i = size_t(l);
    const auto share = [](double x) {  // NaN: that remedy was not trained
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.1f%%", 100 * x);
      return std::isfinite(x) ? std::string(buf) : std::string("not trained");
    };
    std::printf("  block %lld: causal decisions agree with top-k on %.1f%% of tokens (router %s, predictor %s); "
                "processes %.1f%% by the trained rule", (long long)l, 100 * r.topk.causal_accuracy[i],
                share(r.topk.router_accuracy[i]).c_str(), share(r.topk.predictor_accuracy[i]).c_str(),
                100 * r.causal.processed_fraction[i]);
    if (r.calibrated) std::printf(", %.1f%% calibrated", 100 * r.causal_calibrated.processed_fraction[i]);
    std::printf(" (capacity %.1f%%)\n", 100 * r.capacity_share);
  }
}

nlohmann::json eval_json(const EvalReport& r) {
  nlohmann::json j = {{"val_loss", r.topk.loss}, {"tokens", r.topk.tokens}, {"whole_file", r.topk.whole_file},
                      {"step", r.step}, {"flops_per_token", r.flops_per_token}};
  if (std::isfinite(r.topk.accuracy)) j["mlm_accuracy"] = r.topk.accuracy;
  if (!r.leaves_used.empty()) {
    double mean = 0;
    for (double u : r.leaves_used) mean += u / double(r.leaves_used.size());
    j["fff_leaves_used"] = mean;
    j["fff_leaves_used_per_layer"] = r.leaves_used;
  }
  if (!r.has_causal) return j;
  j["val_loss_causal"] = r.causal.loss;
  j["tokens_causal"] = r.causal.tokens;  // the same windows as the top-k loss
  if (r.routed_layers.empty()) return j;
  auto per_layer = [&](const std::vector<double>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (int64_t l : r.routed_layers) a.push_back(v[size_t(l)]);
    return a;
  };
  j["causal_accuracy"] = routed_mean(r, r.topk.causal_accuracy);
  const double racc = routed_mean(r, r.topk.router_accuracy), pacc = routed_mean(r, r.topk.predictor_accuracy);
  if (std::isfinite(racc)) j["router_accuracy"] = racc;  // NaN: that remedy was not trained
  if (std::isfinite(pacc)) j["predictor_accuracy"] = pacc;
  j["processed_fraction"] = routed_mean(r, r.causal.processed_fraction);
  j["routed_layers"] = r.routed_layers;
  j["causal_accuracy_per_layer"] = per_layer(r.topk.causal_accuracy);
  j["processed_fraction_per_layer"] = per_layer(r.causal.processed_fraction);
  j["capacity_share"] = r.capacity_share;
  j["calibrated"] = r.calibrated;
  if (!r.calibrated) return j;
  j["val_loss_calibrated"] = r.causal_calibrated.loss;
  j["processed_fraction_calibrated"] = routed_mean(r, r.causal_calibrated.processed_fraction);
  j["processed_fraction_calibrated_per_layer"] = per_layer(r.causal_calibrated.processed_fraction);
  return j;
}

void run_eval(const EvalFlags& f) {
  f.common.apply();
  LoadedModel lm = load_model(f.ckpt);
  if (lm.config.model.classifier()) return eval_classifier(f.ckpt, std::move(lm), f.task, f.common.json);
  FW_CHECK(f.task.empty(), "eval: --task is for fine-tuned encoders; ", model_file(f.ckpt), " has no classifier");
  const EvalReport r = compute_eval(f, std::move(lm));
  print_eval(r);
  if (f.common.json) print_json(eval_json(r));
}
}  // namespace

void register_eval(CLI::App& app) {
  auto f = std::make_shared<EvalFlags>();
  auto* sub = app.add_subcommand("eval", "validation loss of a checkpoint (MoD: top-k and causal routing)");
  sub->add_option("--ckpt", f->ckpt, "run folder or model.safetensors")->required();
  sub->add_option("--data", f->data, "data folder holding val.bin (language models)");
  sub->add_option("--task", f->task, "a fine-tuned encoder's task (default: the one in RUN/task.json)");
  sub->add_option("--tokens", f->tokens, "validation tokens (default: the whole file, in whole batches)");
  sub->add_option("--trace", f->trace, "write per-token Mixture-of-Depths routing decisions (JSON lines)");
  sub->add_option("--fff-usage", f->fff_usage, "write the tokens reaching each FFF neuron, per layer (JSON)");
  f->common.add(sub);
  sub->callback([f]() { run_eval(*f); });
}

}  // namespace fw::cli
