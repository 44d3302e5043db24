// flopwise eval: validation loss of a checkpoint on a data folder.
#include "cli/common.h"
#include "core/error.h"
#include "data/loader.h"
#include "data/token_file.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/trainer.h"

namespace fw::cli {

namespace {
struct EvalFlags {
  std::string ckpt, data;
  int64_t tokens = 0;
  CommonFlags common;
};

void run_eval(const EvalFlags& f) {
  f.common.apply();
  LoadedModel lm = load_model(f.ckpt);
  const TrainConfig& tc = lm.config.train;
  DataFiles files = find_data_files(f.data);
  const std::string data_tok = data_folder_tokenizer(f.data, lm.config.model.vocab_size);
  FW_CHECK(data_tok == "unknown" || lm.tokenizer == "unknown" || data_tok == lm.tokenizer, f.data,
           ": tokenized with '", data_tok, "' but the checkpoint was trained with '", lm.tokenizer, "'");
  TokenLoader val(files.val, lm.config.model.vocab_size);
  const int64_t tokens = f.tokens > 0 ? f.tokens : val.size() - 1;
  check_memory(Activations::bytes(lm.config.model, tc.micro_batch(), tc.seq_len, false), "eval");
  apply_precision(*lm.model, lm.config);
  Activations acts(*lm.model, tc.micro_batch(), tc.seq_len, false);
  EvalResult r = evaluate(*lm.model, acts, val, tokens);
  if (f.common.json) print_json({{"val_loss", r.loss}, {"tokens", r.tokens}, {"step", lm.step}});
  else std::printf("val loss %.4f over %lld tokens (%s, step %lld)\n", r.loss, (long long)r.tokens,
                   files.val.c_str(), (long long)lm.step);
}
}  // namespace

void register_eval(CLI::App& app) {
  auto f = std::make_shared<EvalFlags>();
  auto* sub = app.add_subcommand("eval", "validation loss of a checkpoint");
  sub->add_option("--ckpt", f->ckpt, "run folder or model.safetensors")->required();
  sub->add_option("--data", f->data, "data folder holding val.bin")->required();
  sub->add_option("--tokens", f->tokens, "validation tokens (default: the whole file, in whole batches)");
  f->common.add(sub);
  sub->callback([f]() { run_eval(*f); });
}

}  // namespace fw::cli
