#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "core/system.h"
#include "core/timer.h"
#include "data/loader.h"
#include "data/token_file.h"
#include "kernels/matmul.h"
#include "kernels/matmul_bf16.h"
#include "nn/flops.h"
#include "nn/model.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace fw {

namespace fs = std::filesystem;

size_t training_memory_bytes(const Config& cfg) {
  const size_t n = Model::count_params(cfg.model);
  size_t bytes = n * sizeof(float) * 4;  // p, g, m, v
  bytes += Activations::bytes(cfg.model, cfg.train.micro_batch(), cfg.train.seq_len, true);
  if (cfg.train.matmul_bf16) {  // bf16 weight copy, and bf16 copies of two matmul operands
    const size_t BT = size_t(cfg.train.micro_batch() * cfg.train.seq_len);
    const size_t widest = size_t(std::max({3 * cfg.model.d_model, cfg.model.hidden(), cfg.model.vocab_size}));
    bytes += n * 2 + 2 * BT * widest * 2;
  }
  return bytes;
}

void apply_precision(Model& model, const Config& cfg) {
  if (cfg.train.matmul_bf16) model.enable_bf16();
}

double peak_flops(const Config& cfg) {
  return cfg.train.matmul_bf16 ? bf16_peak_flops() : sgemm_peak_flops();
}

void check_memory(size_t bytes, const std::string& what) {
  const uint64_t avail = available_memory_bytes();
  FW_CHECK(avail == 0 || double(bytes) < 0.9 * double(avail), "config: ", what, " needs about ",
           human_bytes(double(bytes)), " of memory but only ", human_bytes(double(avail)),
           " is available; use a smaller model, batch or sequence");
}

static std::string eta_str(double s) {
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof(buf), "%dh%02dm", int(s / 3600), int(s / 60) % 60);
  else std::snprintf(buf, sizeof(buf), "%dm%02ds", int(s / 60), int(s) % 60);
  return buf;
}

// Keeps the metrics rows up to `step` (a resumed run rewrites what came after).
static void truncate_metrics(const std::string& path, int64_t step) {
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    try {
      if (nlohmann::json::parse(line).value("step", int64_t(0)) <= step) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {  // a torn last line from a crash
    }
  }
  std::ofstream(path, std::ios::trunc) << kept;
}

namespace {

// One invocation of training: the state that lives across steps and the pieces of
// a step, so run_training reads as the loop it is.
class Trainer {
 public:
  Trainer(const Config& cfg_in, const TrainOptions& opt);
  TrainSummary run();

 private:
  void log(const std::string& s) const {
    if (opt_.log) opt_.log(s);
  }
  double step();  // one optimizer step over grad_accum micro-batches; returns the loss
  void log_step(double loss, double lr, double gnorm, double val);
  void save();

  const TrainOptions& opt_;
  Config cfg_;
  std::unique_ptr<Model> model_;
  AdamW adam_;
  TrainingState st_;
  std::string tokenizer_;
  std::unique_ptr<TokenLoader> train_data_, val_data_;
  std::unique_ptr<Activations> acts_;
  std::vector<int32_t> inputs_, targets_;  // (B, T) one micro-batch
  std::ofstream metrics_;
  FlopCount flops_{};
  double peak_ = 0;
  // throughput: since the start of this invocation, and since the last progress line
  double train_seconds_ = 0, window_seconds_ = 0, window_loss_ = 0;
  int64_t steps_run_ = 0, window_steps_ = 0;
};

Trainer::Trainer(const Config& cfg_in, const TrainOptions& opt) : opt_(opt), cfg_(cfg_in) {
  const std::string model_path = (fs::path(opt.run_dir) / "model.safetensors").string();
  if (opt.resume) {
    LoadedModel lm = load_model(opt.run_dir);
    cfg_ = lm.config;
    check_memory(training_memory_bytes(cfg_), "resuming this run");
    model_ = std::move(lm.model);
    load_training_state(opt.run_dir, *model_, cfg_, lm.step, adam_, st_);
    tokenizer_ = lm.tokenizer;
    FW_CHECK(st_.step < cfg_.train.steps, opt.run_dir, ": already finished (step ", st_.step, " of ",
             cfg_.train.steps, ")");
  } else {
    FW_CHECK(!fs::exists(model_path), opt.run_dir,
             ": already holds a checkpoint; continue it with --resume or choose another --out");
    cfg_.validate();
    check_memory(training_memory_bytes(cfg_), "this training config");
    model_ = std::make_unique<Model>(cfg_.model);
    model_->init_weights(uint64_t(cfg_.train.seed));
    adam_.init(model_->num_params());
    st_.rng = Rng(uint64_t(cfg_.train.seed) ^ 0x5EEDull).state();
  }
  FW_CHECK(opt.stop_after == 0 || opt.stop_after > st_.step, "--stop-after ", opt.stop_after,
           " is not after the run's current step ", st_.step);

  // data
  const std::string data_dir = opt.data_dir.empty() ? st_.data_dir : opt.data_dir;
  FW_CHECK(!data_dir.empty(), "train: --data DIR is required");
  st_.data_dir = fs::absolute(data_dir).string();
  const DataFiles files = find_data_files(data_dir);
  const std::string data_tok = data_folder_tokenizer(data_dir, cfg_.model.vocab_size);
  FW_CHECK(!opt.resume || data_tok == tokenizer_, data_dir, ": tokenizer '", data_tok,
           "' but the run was trained with '", tokenizer_, "'");
  tokenizer_ = data_tok;
  train_data_ = std::make_unique<TokenLoader>(files.train, cfg_.model.vocab_size);
  val_data_ = std::make_unique<TokenLoader>(files.val, cfg_.model.vocab_size);
  train_data_->set_position(st_.data_pos);

  // buffers, run folder, accounting
  const TrainConfig& tc = cfg_.train;
  model_->enable_grads();
  apply_precision(*model_, cfg_);
  acts_ = std::make_unique<Activations>(*model_, tc.micro_batch(), tc.seq_len, true);
  inputs_.resize(size_t(tc.micro_batch() * tc.seq_len));
  targets_.resize(inputs_.size());
  fs::create_directories(opt.run_dir);
  const std::string metrics_path = (fs::path(opt.run_dir) / "metrics.jsonl").string();
  if (opt.resume) truncate_metrics(metrics_path, st_.step);
  else std::ofstream(metrics_path, std::ios::trunc);
  std::ofstream(fs::path(opt.run_dir) / "config.json", std::ios::trunc) << to_json(cfg_).dump(2) << "\n";
  metrics_.open(metrics_path, std::ios::app);
  flops_ = count_flops(cfg_.model, tc.seq_len);
  peak_ = peak_flops(cfg_);
  log(str("model: ", model_->num_params(), " parameters (",
          model_->num_params() - model_->num_embedding_params(), " without embeddings); forward ",
          flops_.forward_per_token() / 1e6, " MFLOP/token (exact), training ",
          flops_.train_per_token() / 1e6, " MFLOP/token vs 6N = ", six_n_per_token(cfg_.model) / 1e6));
  log(str("data: ", train_data_->size(), " train tokens (", files.train, "), ", val_data_->size(),
          " val tokens; tokenizer ", tokenizer_, "; ", tc.matmul_bf16 ? "bf16 matmul" : "fp32 sgemm",
          " peak ", peak_ / 1e9, " GFLOP/s"));
  if (opt.resume) log(str("resuming ", opt.run_dir, " at step ", st_.step, " of ", tc.steps));
}

double Trainer::step() {
  const TrainConfig& tc = cfg_.train;
  const int64_t B = tc.micro_batch(), T = tc.seq_len, A = tc.grad_accum;
  model_->grads.zero();
  double loss = 0;
  for (int64_t micro = 0; micro < A; micro++) {
    train_data_->next_batch(inputs_.data(), targets_.data(), B, T);
    Rng rng;  // the run's random stream, saved in checkpoints
    rng.set_state(st_.rng);
    acts_->noise_seed = rng.next_u64();
    st_.rng = rng.state();
    loss += model_forward(*model_, *acts_, inputs_.data(), targets_.data()) / double(A);
    model_backward(*model_, *acts_, inputs_.data(), targets_.data(), 1.0f / float(A));
  }
  return loss;
}

void Trainer::log_step(double loss, double lr, double gnorm, double val) {
  const TrainConfig& tc = cfg_.train;
  const int64_t tokens_per_step = tc.batch_size * tc.seq_len;
  const double tps = double(window_steps_ * tokens_per_step) / window_seconds_;
  const double mfu = tps * flops_.train_per_token() / peak_;
  nlohmann::json row = {{"step", st_.step}, {"loss", loss}, {"lr", lr}, {"grad_norm", gnorm},
                        {"tokens_per_s", tps}, {"mfu", mfu}, {"tokens", st_.step * tokens_per_step},
                        {"flops", double(st_.step * tokens_per_step) * flops_.train_per_token()},
                        {"seconds", st_.train_seconds}};
  if (std::isfinite(val)) row["val_loss"] = val;
  metrics_ << row.dump() << "\n" << std::flush;
  const double eta = double(tc.steps - st_.step) * train_seconds_ / double(steps_run_);
  const std::string val_part = std::isfinite(val) ? str(" | val ", val) : "";
  char line[256];
  std::snprintf(line, sizeof(line), "step %6lld/%lld | loss %.4f | lr %.2e | %6.0f tok/s | MFU %4.1f%% | ETA %s%s",
                (long long)st_.step, (long long)tc.steps, window_loss_ / double(window_steps_), lr, tps,
                100 * mfu, eta_str(eta).c_str(), val_part.c_str());
  log(line);
  window_seconds_ = window_loss_ = 0;
  window_steps_ = 0;
}

void Trainer::save() {
  st_.data_pos = train_data_->position();
  save_checkpoint(opt_.run_dir, *model_, cfg_, tokenizer_, adam_, st_);
}

TrainSummary Trainer::run() {
  const TrainConfig& tc = cfg_.train;
  TrainSummary sum;
  sum.flops_per_token = flops_.train_per_token();
  while (st_.step < tc.steps) {
    const double t0 = now_seconds();
    const double loss = step();
    const double lr = learning_rate(tc, st_.step);
    const double gnorm = std::isfinite(loss) ? adam_.update(*model_, lr, tc.weight_decay, tc.grad_clip) : NAN;
    model_->sync_bf16();  // the bf16 copies follow the updated fp32 weights
    FW_CHECK(std::isfinite(loss) && std::isfinite(gnorm), "step ", st_.step + 1,
             ": non-finite training loss (", loss, ") or gradient norm (", gnorm,
             "); stopped without saving (the last good checkpoint in ", opt_.run_dir,
             " is kept); try a lower train.lr");
    st_.step++;
    steps_run_++;
    const double dt = now_seconds() - t0;
    train_seconds_ += dt;
    st_.train_seconds += dt;
    window_seconds_ += dt;
    window_loss_ += loss;
    window_steps_++;
    sum.train_loss = loss;

    const bool last = st_.step == tc.steps;
    const bool do_eval = last || (tc.eval_every > 0 && st_.step % tc.eval_every == 0);
    const double val = do_eval ? evaluate(*model_, *acts_, *val_data_, tc.eval_tokens).loss : NAN;
    if (do_eval) sum.val_loss = val;
    if (st_.step % tc.log_every == 0 || last || do_eval) log_step(loss, lr, gnorm, val);
    const bool stop_now = opt_.stop_after > 0 && st_.step == opt_.stop_after && !last;
    if (last || stop_now || (tc.ckpt_every > 0 && st_.step % tc.ckpt_every == 0)) save();
    if (stop_now) {
      log(str("stopped after step ", st_.step, " (--stop-after); continue with --resume ", opt_.run_dir));
      break;
    }
  }
  sum.step = st_.step;
  sum.finished = st_.step == tc.steps;
  sum.tokens_per_s = steps_run_ ? double(steps_run_ * tc.batch_size * tc.seq_len) / train_seconds_ : 0;
  sum.mfu = sum.tokens_per_s * flops_.train_per_token() / peak_;
  return sum;
}

}  // namespace

TrainSummary run_training(const Config& cfg, const TrainOptions& opt) { return Trainer(cfg, opt).run(); }

}  // namespace fw
