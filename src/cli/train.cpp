// flopwise train: train a model on a data folder into a run folder.
#include "cli/common.h"
#include "core/error.h"
#include "train/trainer.h"

namespace fw::cli {

namespace {
struct TrainFlags {
  std::string data, out, resume;
  int64_t stop_after = 0;
  ConfigFlags config;
  CommonFlags common;
};

void run_train(const TrainFlags& f) {
  f.common.apply();
  TrainOptions opt;
  opt.data_dir = f.data;
  opt.stop_after = f.stop_after;
  opt.log = note;
  Config cfg;
  if (!f.resume.empty()) {
    FW_CHECK(f.config.file.empty() && f.config.sets.empty(),
             "train --resume continues with the run's saved config; --config/--set are not allowed");
    FW_CHECK(f.out.empty() || f.out == f.resume, "train --resume RUN writes into RUN; drop --out");
    opt.run_dir = f.resume;
    opt.resume = true;
  } else {
    cfg = f.config.build();
    FW_CHECK(!f.out.empty(), "train: --out RUN is required (or --resume RUN)");
    FW_CHECK(!f.data.empty(), "train: --data DIR is required");
    opt.run_dir = f.out;
  }
  TrainSummary s = run_training(cfg, opt);
  nlohmann::json j = {{"step", s.step},           {"train_loss", s.train_loss},
                      {"val_loss", s.val_loss},   {"tokens_per_s", s.tokens_per_s},
                      {"mfu", s.mfu},             {"flops_per_token", s.flops_per_token},
                      {"finished", s.finished},   {"run", opt.run_dir}};
  if (f.common.json) print_json(j);
  else std::printf("%s at step %lld: train loss %.4f, val loss %.4f, %.0f tokens/s, MFU %.1f%%\n",
                   s.finished ? "finished" : "stopped", (long long)s.step, s.train_loss, s.val_loss,
                   s.tokens_per_s, 100 * s.mfu);
}
}  // namespace

void register_train(CLI::App& app) {
  auto f = std::make_shared<TrainFlags>();
  auto* sub = app.add_subcommand("train", "train a model (fresh, or --resume a run)");
  sub->add_option("--data", f->data, "data folder from `flopwise prepare` (or llm.c token files)");
  sub->add_option("--out", f->out, "run folder to create");
  sub->add_option("--resume", f->resume, "run folder to continue to train.steps");
  sub->add_option("--stop-after", f->stop_after, "end after this step with a checkpoint (schedule unchanged)");
  f->config.add(sub);
  f->common.add(sub);
  sub->callback([f]() { run_train(*f); });
}

}  // namespace fw::cli
