#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "core/system.h"
#include "core/threads.h"
#include "core/timer.h"
#include "batching/loader.h"
#include "batching/masking.h"
#include "formats/atomic_file.h"
#include "formats/token_file.h"
#include "kernels/adamw.h"
#include "kernels/matmul.h"
#include "nn/flops.h"
#include "nn/model.h"
#include "parallel/agreement.h"
#include "infer/calibration.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/optimizer.h"
#include "train/precision.h"
#include "formats/run_folder.h"
#include "train/schedule.h"

namespace fw {

namespace fs = std::filesystem;

size_t training_memory_bytes(const Config& cfg, int ranks, bool zero1) {
  const size_t n = Model::count_params(cfg.model);
  size_t bytes = n * sizeof(float) * 2;                        // p, g
  bytes += n * sizeof(float) * 2 / size_t(zero1 ? ranks : 1);  // m, v
  const int64_t B = std::max<int64_t>(1, cfg.train.micro_batch(ranks));
  bytes += Activations::bytes(cfg.model, B, cfg.train.seq_len, true);
  if (cfg.train.matmul_bf16 != MatmulPrecision::fp32) {  // bf16 weight copy, and bf16 copies of two matmul operands
    const size_t BT = size_t(B * cfg.train.seq_len);
    const size_t widest = size_t(std::max({3 * cfg.model.d_model, cfg.model.hidden(), cfg.model.vocab_size}));
    bytes += n * 2 + 2 * BT * widest * 2;
  }
  return bytes;
}

static std::string eta_str(double s) {
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof(buf), "%dh%02dm", int(s / 3600), int(s / 60) % 60);
  else std::snprintf(buf, sizeof(buf), "%dm%02ds", int(s / 60), int(s) % 60);
  return buf;
}

namespace {

// Mixed into a micro-batch's seed for its masked-LM choices (encoders), so they are
// independent of the draws the forward makes from the same seed.
constexpr uint64_t kMaskingStream = 0x6D61736B696E6700ull;  // "masking"

// One invocation of training: the state that lives across steps and the pieces of
// a step, so run_training reads as the loop it is.
class Trainer {
 public:
  Trainer(const Config& cfg_in, const TrainOptions& opt);
  TrainSummary run();

 private:
  void log(const std::string& s) const {
    if (opt_.log && comm_.rank() == 0) opt_.log(s);
  }
  // The constructor's parts, in order.
  void start_or_resume();      // the model, optimizer and run state: fresh, or from the run's checkpoint
  void shard_moments();        // ZeRO-1: this rank's AdamW moments only
  std::string open_data();     // the token files (and their tokenizer's agreement); returns the train file
  void prepare_run_folder();   // rank 0: config.json, metrics.jsonl (cut back to the step on resume)
  void resolve_precision();  // train.matmul_bf16 = "auto" measured and decided
  void log_start(const std::string& train_file);
  void check_batch_split() const;
  void check_ranks_agree_on_start() const;
  double step();    // one optimizer step: this rank's micro-batches; returns the global loss
  double update(double lr);  // averages gradients across ranks, applies AdamW; returns the grad norm
  struct Validation {
    double loss = NAN, accuracy = NAN;  // accuracy: encoders' masked-LM
  };
  Validation validate();
  void log_step(double loss, double lr, double gnorm, const Validation& val);
  void save();
  void calibrate();            // rank 0, after the last step: sampling's routing thresholds
  // Runs one collective of a training step, counting its time as communication.
  template <typename F>
  void communicate(F&& f) {
    const double t0 = now_seconds();
    f();
    const double dt = now_seconds() - t0;
    comm_seconds_ += dt;
    window_comm_ += dt;
  }

  const TrainOptions& opt_;
  Comm& comm_;  // the data-parallel ranks (opt.comm, or this process alone)
  const int P_, rank_;
  std::vector<int64_t> shards_;  // (P) ZeRO-1: parameters each rank's AdamW updates
  Config cfg_;
  std::unique_ptr<Model> model_;
  AdamW adam_;
  TrainingState st_;
  std::string tokenizer_;
  std::unique_ptr<TokenLoader> train_data_, val_data_;
  std::unique_ptr<Activations> acts_;
  std::vector<int32_t> inputs_, targets_;  // (B, T) one micro-batch
  std::vector<int32_t> masked_;            // (B, T) encoders: the masked-LM inputs
  std::ofstream metrics_;
  FlopCount flops_{};
  double peak_ = 0;
  // throughput: since the start of this invocation, and since the last progress line
  double train_seconds_ = 0, window_seconds_ = 0, window_loss_ = 0;
  double comm_seconds_ = 0, window_comm_ = 0;  // inside collectives (waiting for peers included)
  int64_t steps_run_ = 0, window_steps_ = 0;
  bool warned_mfu_ = false;  // said once that an MFU above 100% comes from a low measured peak
};

Trainer::Trainer(const Config& cfg_in, const TrainOptions& opt)
    : opt_(opt), comm_(opt.comm ? *opt.comm : single_process()), P_(comm_.size()), rank_(comm_.rank()),
      cfg_(cfg_in) {
  start_or_resume();
  shard_moments();
  FW_CHECK(opt.stop_after == 0 || opt.stop_after > st_.step, "--stop-after ", opt.stop_after,
           " is not after the run's current step ", st_.step);
  FW_CHECK(!opt.on_step || P_ == 1, "internal: a step callback in a data-parallel run (ranks would stop apart)");
  const std::string train_file = open_data();
  check_ranks_agree_on_start();
  const TrainConfig& tc = cfg_.train;
  model_->enable_grads();
  acts_ = std::make_unique<Activations>(*model_, tc.micro_batch(P_), tc.seq_len, true);
  resolve_precision();
  inputs_.resize(size_t(tc.micro_batch(P_) * tc.seq_len));
  targets_.resize(inputs_.size());
  if (cfg_.model.encoder()) masked_.resize(inputs_.size());
  if (rank_ == 0) prepare_run_folder();
  flops_ = count_flops(cfg_.model, tc.seq_len, tc.mask_rate);
  peak_ = matmul_peak_flops(tc.bf16());
  log_start(train_file);
}

// train.matmul_bf16 = "auto": rank 0 times both precisions on this model and every rank
// takes its answer; the run's config records the decision (true or false), so a resumed
// run, eval and sample use the same numerics without measuring again.
void Trainer::resolve_precision() {
  TrainConfig& tc = cfg_.train;
  if (tc.matmul_bf16 == MatmulPrecision::automatic) {
    std::string decision;
    if (rank_ == 0) {
      const PrecisionChoice c = measure_matmul_precision(*model_, *acts_, tc.micro_batch(P_), tc.seq_len);
      decision = c.bf16 ? "bf16" : "fp32";
      log("precision: train.matmul_bf16 = auto: " + c.summary());
    }
    decision = comm_.broadcast(decision, 0, "the measured precision");
    tc.matmul_bf16 = decision == "bf16" ? MatmulPrecision::bf16 : MatmulPrecision::fp32;
  }
  model_->set_matmul_bf16(tc.bf16());
}

void Trainer::start_or_resume() {
  if (opt_.resume) {
    // a crash between a checkpoint's two renames: rank 0 completes it, the others wait
    const std::string done = comm_.broadcast(rank_ == 0 ? finish_interrupted_checkpoint(opt_.run_dir) : "", 0,
                                             "finishing an interrupted checkpoint");
    if (!done.empty()) log(done);
    LoadedModel lm = load_model(opt_.run_dir);
    cfg_ = lm.config;
    check_batch_split();
    check_memory(training_memory_bytes(cfg_, P_, opt_.zero1), "resuming this run");
    model_ = std::move(lm.model);
    load_training_state(opt_.run_dir, *model_, cfg_, lm.step, adam_, st_);
    tokenizer_ = lm.tokenizer;
    FW_CHECK(st_.step < cfg_.train.steps, opt_.run_dir, ": already finished (step ", st_.step, " of ",
             cfg_.train.steps, ")");
    return;
  }
  FW_CHECK(!fs::exists(run_path(opt_.run_dir, run_file::model)), opt_.run_dir,
           ": already holds a checkpoint; continue it with --resume or choose another --out");
  cfg_.validate();
  check_batch_split();
  check_memory(training_memory_bytes(cfg_, P_, opt_.zero1), "this training config");
  model_ = std::make_unique<Model>(cfg_.model);
  model_->init_weights(uint64_t(cfg_.train.seed));
  if (!opt_.zero1) adam_.init(model_->num_params());  // ZeRO-1: a shard (shard_moments)
  st_.rng = Rng(uint64_t(cfg_.train.seed) ^ 0x5EEDull).state();
}

void Trainer::shard_moments() {
  if (!opt_.zero1) return;
  shards_ = split_counts(int64_t(model_->num_params()), P_);
  int64_t lo = 0;
  for (int r = 0; r < rank_; r++) lo += shards_[size_t(r)];
  if (opt_.resume) adam_.keep_shard(lo, lo + shards_[size_t(rank_)]);
  else adam_.init_shard(lo, lo + shards_[size_t(rank_)]);
}

std::string Trainer::open_data() {
  const std::string data_dir = opt_.data_dir.empty() ? st_.data_dir : opt_.data_dir;
  FW_CHECK(!data_dir.empty(), "train: --data DIR is required");
  st_.data_dir = fs::absolute(data_dir).string();
  const DataFiles files = find_data_files(data_dir);
  const std::string data_tok = data_folder_tokenizer(data_dir, cfg_.model.vocab_size, cfg_.model.vocab_size - cfg_.model.text_vocab());
  FW_CHECK(!opt_.resume || data_tok == tokenizer_, data_dir, ": tokenizer '", data_tok,
           "' but the run was trained with '", tokenizer_, "'");
  tokenizer_ = data_tok;
  // an encoder's text ids lie below its special tokens
  const std::string limit = cfg_.model.encoder() ? "the encoder's text ids (model.vocab_size - 4)" : "model.vocab_size";
  train_data_ = std::make_unique<TokenLoader>(files.train, cfg_.model.text_vocab(), limit);
  val_data_ = std::make_unique<TokenLoader>(files.val, cfg_.model.text_vocab(), limit);
  train_data_->set_position(st_.data_pos);
  // validation reads whole windows from the file's start and never wraps (train/evaluate.h)
  const TrainConfig& tc = cfg_.train;
  const int64_t windows = validation_windows(*val_data_, tc.eval_tokens, tc.seq_len, P_);
  if (tc.eval_tokens / tc.seq_len > windows)
    log(str("validation: train.eval_tokens = ", tc.eval_tokens, " but ", files.val, " holds ", windows,
            " whole sequences; each validation reads the whole file once (", windows * tc.seq_len, " tokens)"));
  return files.train;
}

// Before the first step: a folder the run cannot write is refused now, not at its
// first checkpoint.
void Trainer::prepare_run_folder() {
  require_writable_folder(opt_.run_dir, "run folder");
  const std::string metrics_path = run_path(opt_.run_dir, run_file::metrics);
  if (opt_.resume) truncate_metrics(metrics_path, st_.step);
  else write_file_atomic(metrics_path, "");
  write_file_atomic(run_path(opt_.run_dir, run_file::config), to_json(cfg_).dump(2) + "\n");
  metrics_.open(metrics_path, std::ios::app);
  FW_CHECK(metrics_.is_open(), metrics_path, ": cannot open for appending");
}

void Trainer::log_start(const std::string& train_file) {
  const TrainConfig& tc = cfg_.train;
  log(str("model: ", model_->num_params(), " parameters (",
          model_->num_params() - model_->num_embedding_params(), " without embeddings); forward ",
          flops_.forward_per_token() / 1e6, " MFLOP/token (exact), training ",
          flops_.train_per_token() / 1e6, " MFLOP/token vs 6N = ", six_n_per_token(cfg_.model) / 1e6));
  log(str("data: ", train_data_->size(), " train tokens (", train_file, "), ", val_data_->size(),
          " val tokens; tokenizer ", tokenizer_, "; ", tc.bf16() ? "bf16 matmul" : "fp32 sgemm",
          " peak ", peak_ / 1e9, " GFLOP/s"));
  if (P_ > 1)
    log(str("parallel: ", comm_.describe(), " × ", num_threads(), " threads; per rank and step ", tc.grad_accum,
            " × ", tc.micro_batch(P_), " sequences of the global batch of ", tc.batch_size,
            opt_.zero1 ? str("; ZeRO-1: AdamW moments sharded (", shards_[0], " parameters per rank)") : ""));
  if (opt_.resume) log(str("resuming ", opt_.run_dir, " at step ", st_.step, " of ", tc.steps));
}

void Trainer::check_batch_split() const {
  const TrainConfig& tc = cfg_.train;
  FW_CHECK(tc.batch_size % (int64_t(P_) * tc.grad_accum) == 0, "config: train.batch_size = ", tc.batch_size,
           " does not split into ", P_, " ranks × train.grad_accum = ", tc.grad_accum,
           " equal micro-batches; use a multiple of ", int64_t(P_) * tc.grad_accum);
}

// What every rank must share: the config, the data (sizes and checksums: paths may
// differ between hosts), the checkpoint it resumes and the way it was asked to run.
void Trainer::check_ranks_agree_on_start() const {
  if (P_ == 1) return;
  auto data = [](const TokenLoader& d) {
    return nlohmann::json{{"tokens", d.size()}, {"checksum", str(std::hex, d.checksum())}};
  };
  const nlohmann::json setup = {{"config", to_json(cfg_)},
                                {"data", {{"train", data(*train_data_)}, {"val", data(*val_data_)}}},
                                {"tokenizer", tokenizer_},
                                {"resume", opt_.resume},
                                {"checkpoint", {{"step", st_.step}, {"data_pos", st_.data_pos}}},
                                {"stop_after", opt_.stop_after},
                                {"zero1", opt_.zero1}};
  check_ranks_agree(comm_, setup);
}

// The global batch is G = batch_size sequences read consecutively from the stream;
// rank r takes rows [r·G/P, (r+1)·G/P) in A micro-batches. Scaling each backward by
// 1/(A·P) makes the sum over ranks the mean gradient of the whole batch, as one
// process computing it alone would (one process: P = 1, the same code).
double Trainer::step() {
  const TrainConfig& tc = cfg_.train;
  const int64_t G = tc.batch_size, T = tc.seq_len, A = tc.grad_accum, B = tc.micro_batch(P_);
  const int64_t start = train_data_->position();
  train_data_->advance(rank_ * (G / P_) * T);
  // The run's random stream (saved in checkpoints) gives one seed per micro-batch of
  // the whole job; every rank draws all of them, so the stream stays in step.
  Rng rng;
  rng.set_state(st_.rng);
  std::vector<uint64_t> seeds(size_t(P_ * A));
  for (auto& seed : seeds) seed = rng.next_u64();
  st_.rng = rng.state();

  model_->grads.zero();
  double loss = 0;
  for (int64_t micro = 0; micro < A; micro++) {
    train_data_->next_batch(inputs_.data(), targets_.data(), B, T);
    const ForwardMode mode{true, seeds[size_t(rank_ * A + micro)]};
    if (cfg_.model.encoder()) {  // masked-LM: [CLS] + the masked text, targets at the chosen tokens
      mask_for_mlm(masked_.data(), targets_.data(), inputs_.data(), B, T, tc.mask_rate, cfg_.model,
                   hash64(mode.seed ^ kMaskingStream));
      std::swap(inputs_, masked_);
    }
    loss += model_forward(*model_, *acts_, inputs_.data(), targets_.data(), mode).loss / double(A * P_);
    model_backward(*model_, *acts_, inputs_.data(), targets_.data(), 1.0f / float(A * P_));
  }
  train_data_->set_position(start);
  train_data_->advance(G * T);
  communicate([&] { comm_.allreduce_sum(&loss, 1, "all-reduce of the training loss"); });
  return loss;
}

// Plain data parallelism: one all-reduce sums the gradients, and every rank applies
// the same update to its full copy. ZeRO-1: a reduce-scatter leaves each rank the sum
// over its shard, which it updates with its shard of the moments; an all-gather then
// shares the updated parameters. The gradient norm for clipping is always the norm of
// the whole summed gradient.
double Trainer::update(double lr) {
  const TrainConfig& tc = cfg_.train;
  float* grads = model_->grads.data();
  const int64_t n = int64_t(model_->num_params());
  if (opt_.zero1) communicate([&] { comm_.reduce_scatter_sum(grads, shards_, "reduce-scatter of gradients"); });
  else communicate([&] { comm_.allreduce_sum(grads, n, "all-reduce of gradients"); });
  double sq = sum_squares(grads + adam_.lo, adam_.hi - adam_.lo);
  if (opt_.zero1) communicate([&] { comm_.allreduce_sum(&sq, 1, "all-reduce of the gradient norm"); });
  const double norm = std::sqrt(sq);
  adam_.apply(*model_, tc, lr, norm);
  if (opt_.zero1) communicate([&] { comm_.allgather(model_->params.data(), shards_, "all-gather of parameters"); });
  return norm;
}

Trainer::Validation Trainer::validate() {
  const EvalResult e = evaluate(*model_, *acts_, *val_data_, cfg_.train.eval_tokens, rank_, P_, cfg_.train.mask_rate);
  double v[2] = {e.loss / double(P_), e.accuracy / double(P_)};  // each rank's mean over as many windows
  comm_.allreduce_sum(v, 2, "all-reduce of the validation loss");  // outside the step's time
  return {v[0], v[1]};
}

void Trainer::log_step(double loss, double lr, double gnorm, const Validation& val) {
  const TrainConfig& tc = cfg_.train;
  const int64_t tokens_per_step = tc.batch_size * tc.seq_len;
  const double tps = double(window_steps_ * tokens_per_step) / window_seconds_;
  const double mfu = tps * flops_.train_per_token() / (peak_ * P_);
  const double comm_share = window_comm_ / window_seconds_;
  MetricsRow row;
  row.step = st_.step;
  row.loss = loss;
  row.lr = lr;
  row.grad_norm = gnorm;
  row.tokens_per_s = tps;
  row.mfu = mfu;
  row.tokens = double(st_.step * tokens_per_step);
  row.flops = row.tokens * flops_.train_per_token();
  row.seconds = st_.train_seconds;
  row.val_loss = val.loss;  // NaN off evaluation steps: left out
  row.val_accuracy = val.accuracy;
  if (P_ > 1) row.comm_share = comm_share;
  if (rank_ == 0) {
    nlohmann::json j = metrics_json(row);
    j["precision"] = cfg_.train.bf16() ? "bf16" : "fp32";  // (train.matmul_bf16 = "auto": what it decided)
    metrics_ << j.dump() << "\n" << std::flush;
    FW_CHECK(metrics_.good(), run_path(opt_.run_dir, run_file::metrics), ": write failed (disk full?)");
  }
  const double eta = double(tc.steps - st_.step) * train_seconds_ / double(steps_run_);
  const std::string val_part = std::isfinite(val.loss) ? str(" | val ", val.loss) : "";
  const std::string acc_part = std::isfinite(val.accuracy) ? str(" (MLM accuracy ", val.accuracy, ")") : "";
  const std::string comm_part = P_ > 1 ? str(" | comm ", int(std::lround(100 * comm_share)), "%") : "";
  char line[256];
  std::snprintf(line, sizeof(line), "step %6lld/%lld | loss %.4f | lr %.2e | %6.0f tok/s | MFU %4.1f%%%s | ETA %s%s",
                (long long)st_.step, (long long)tc.steps, window_loss_ / double(window_steps_), lr, tps,
                100 * mfu, comm_part.c_str(), eta_str(eta).c_str(), (val_part + acc_part).c_str());
  log(line);
  if (mfu > 1 && !warned_mfu_) {  // once: the denominator, not the step, is what is off
    warned_mfu_ = true;
    log(str("note: MFU above 100% means the matmul peak measured at start-up (", peak_ / 1e9,
            " GFLOP/s) was low, most likely because other work shared the cores then; this run's MFU "
            "figures are relative to it"));
  }
  window_seconds_ = window_loss_ = window_comm_ = 0;
  window_steps_ = 0;
}

// Sampling's routing thresholds from the validation windows (infer/calibration.h), for
// the final checkpoint; outside the steps' time.
void Trainer::calibrate() {
  const TrainConfig& tc = cfg_.train;
  const double t0 = now_seconds();
  model_->calibration = calibrate_causal(*model_, *val_data_, tc.eval_tokens, tc.seq_len);
  std::string per_block;
  for (int64_t l = 0; l < cfg_.model.n_layers; l++)
    if (cfg_.model.mod.routed(l)) per_block += str(" ", l, ": ", model_->calibration.threshold[size_t(l)]);
  log(str("calibrated sampling's routing to the capacity on ", model_->calibration.tokens,
          " validation tokens in ", eta_str(now_seconds() - t0), "; thresholds by block", per_block));
}

// Rank 0 writes the checkpoint; with ZeRO-1 it first gathers the moments' shards, so
// the files are the same whatever the number of ranks (and resume on any number).
void Trainer::save() {
  st_.data_pos = train_data_->position();
  if (!opt_.zero1) {
    if (rank_ == 0) save_checkpoint(opt_.run_dir, *model_, cfg_, tokenizer_, adam_, st_);
    return;
  }
  AdamW whole;
  if (rank_ == 0) whole.init(model_->num_params());
  whole.step = adam_.step;
  comm_.gather_to_root(adam_.m.data(), whole.m.data(), shards_, "gathering AdamW moments for a checkpoint");
  comm_.gather_to_root(adam_.v.data(), whole.v.data(), shards_, "gathering AdamW moments for a checkpoint");
  if (rank_ == 0) save_checkpoint(opt_.run_dir, *model_, cfg_, tokenizer_, whole, st_);
}

TrainSummary Trainer::run() {
  const TrainConfig& tc = cfg_.train;
  TrainSummary sum;
  sum.flops_per_token = flops_.train_per_token();
  sum.bf16 = cfg_.train.bf16();
  if (st_.step < tc.steps) model_->calibration = {};  // a resumed run's thresholds go stale with training
  while (st_.step < tc.steps) {
    const double t0 = now_seconds();
    const double loss = step();
    const double lr = learning_rate(tc, st_.step);
    const double gnorm = std::isfinite(loss) ? update(lr) : NAN;
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
    const Validation val = do_eval ? validate() : Validation{};
    if (do_eval) {
      sum.val_loss = val.loss;
      sum.val_accuracy = val.accuracy;
    }
    if (st_.step % tc.log_every == 0 || last || do_eval) log_step(loss, lr, gnorm, val);
    const bool asked = opt_.on_step && !opt_.on_step({st_.step, tc.steps, loss, lr, do_eval ? val.loss : NAN,
                                                      st_.train_seconds});
    const bool stop_now = ((opt_.stop_after > 0 && st_.step == opt_.stop_after) || asked) && !last;
    if (last && cfg_.model.mod.enabled && !cfg_.model.encoder() && rank_ == 0) calibrate();  // sampling's routing
    if (last || stop_now || (tc.ckpt_every > 0 && st_.step % tc.ckpt_every == 0)) save();
    if (stop_now) {
      log(str("stopped after step ", st_.step, asked ? "" : " (--stop-after)", "; continue with --resume ",
              opt_.run_dir));
      break;
    }
  }
  sum.step = st_.step;
  sum.finished = st_.step == tc.steps;
  sum.tokens_per_s = steps_run_ ? double(steps_run_ * tc.batch_size * tc.seq_len) / train_seconds_ : 0;
  sum.mfu = sum.tokens_per_s * flops_.train_per_token() / (peak_ * P_);
  sum.ranks = P_;
  sum.comm_share = train_seconds_ > 0 ? comm_seconds_ / train_seconds_ : 0;
  return sum;
}

}  // namespace

TrainSummary run_training(const Config& cfg, const TrainOptions& opt) { return Trainer(cfg, opt).run(); }

}  // namespace fw
