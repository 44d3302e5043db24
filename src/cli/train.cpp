// flopwise train: train a model on a data folder into a run folder.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <cstdlib>

#include "cli/common.h"
#include "core/error.h"
#include "core/threads.h"
#include "parallel/comm.h"
#include "train/trainer.h"

namespace fw::cli {

namespace {
struct TrainFlags {
  std::string data, out, resume;
  int64_t stop_after = 0;
  bool zero1 = false;
  double comm_timeout = 600;
  ConfigFlags config;
  CommonFlags common;
};

void run_train(const TrainFlags& f) {
  f.common.apply();
  // Under mpirun: this process is one rank; its threads share the host with the others.
  Comm& comm = world();
  comm.set_timeout(f.comm_timeout);
  if (comm.size() > 1 && f.common.threads == 0 && !std::getenv("OMP_NUM_THREADS"))
    set_num_threads(default_threads_per_rank());
  TrainOptions opt;
  opt.data_dir = f.data;
  opt.stop_after = f.stop_after;
  opt.log = note;
  opt.comm = &comm;
  opt.zero1 = f.zero1;
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
  if (comm.rank() != 0) return;  // rank 0 reports for the job
  nlohmann::json j = {{"step", s.step},           {"train_loss", s.train_loss},
                      {"val_loss", s.val_loss},   {"tokens_per_s", s.tokens_per_s},
                      {"mfu", s.mfu},             {"flops_per_token", s.flops_per_token},
                      {"finished", s.finished},   {"run", opt.run_dir},
                      {"ranks", s.ranks},         {"comm_share", s.comm_share},
                      {"precision", s.bf16 ? "bf16" : "fp32"}};
  if (std::isfinite(s.val_accuracy)) j["val_accuracy"] = s.val_accuracy;  // encoders' masked-LM accuracy
  if (f.common.json) {
    print_json(j);
    return;
  }
  char val[64] = "not run yet";
  if (std::isfinite(s.val_loss)) std::snprintf(val, sizeof(val), "%.4f", s.val_loss);
  if (std::isfinite(s.val_accuracy))
    std::snprintf(val + std::strlen(val), sizeof(val) - std::strlen(val), " (MLM accuracy %.3f)", s.val_accuracy);
  std::printf("%s at step %lld: train loss %.4f, val loss %s, %.0f tokens/s, MFU %.1f%%%s\n",
              s.finished ? "finished" : "stopped", (long long)s.step, s.train_loss, val,
              s.tokens_per_s, 100 * s.mfu,
              s.ranks > 1 ? str(" (", s.ranks, " ranks, ", int(std::lround(100 * s.comm_share)),
                                "% of the step in communication)").c_str() : "");
}
}  // namespace

void register_train(CLI::App& app) {
  auto f = std::make_shared<TrainFlags>();
  auto* sub = app.add_subcommand("train", "train a model (fresh, or --resume a run)");
  sub->add_option("--data", f->data, "data folder from `flopwise prepare` (or llm.c token files)");
  sub->add_option("--out", f->out, "run folder to create");
  sub->add_option("--resume", f->resume, "run folder to continue to train.steps");
  sub->add_option("--stop-after", f->stop_after, "end after this step with a checkpoint (schedule unchanged)");
  sub->add_flag("--zero1", f->zero1, "under mpirun: shard the AdamW moments across ranks (ZeRO stage 1)");
  sub->add_option("--comm-timeout", f->comm_timeout,
                  "under mpirun: seconds a rank waits in a collective before ending the job (default 600)")
      ->check(CLI::PositiveNumber);
  f->config.add(sub);
  f->common.add(sub);
  sub->callback([f]() { run_train(*f); });
}

}  // namespace fw::cli
