#include "train/trainer.h"

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
#include "nn/flops.h"
#include "nn/model.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace fw {

namespace fs = std::filesystem;

size_t training_memory_bytes(const Config& cfg) {
  const size_t weights = Model::count_params(cfg.model) * sizeof(float) * 4;  // p, g, m, v
  return weights + Activations::bytes(cfg.model, cfg.train.micro_batch(), cfg.train.seq_len, true);
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

TrainSummary run_training(const Config& cfg_in, const TrainOptions& opt) {
  auto log = [&](const std::string& s) {
    if (opt.log) opt.log(s);
  };
  // ---- configuration and state ------------------------------------------------
  Config cfg = cfg_in;
  std::unique_ptr<Model> model;
  AdamW adam;
  TrainingState st;
  std::string tokenizer;
  if (opt.resume) {
    LoadedModel lm = load_model(opt.run_dir);
    cfg = lm.config;
    check_memory(training_memory_bytes(cfg), "resuming this run");
    model = std::move(lm.model);
    load_training_state(opt.run_dir, *model, cfg, lm.step, adam, st);
    tokenizer = lm.tokenizer;
    FW_CHECK(st.step < cfg.train.steps, opt.run_dir, ": already finished (step ", st.step, " of ",
             cfg.train.steps, ")");
  } else {
    cfg.validate();
    check_memory(training_memory_bytes(cfg), "this training config");
    model = std::make_unique<Model>(cfg.model);
    model->init_weights(uint64_t(cfg.train.seed));
    adam.init(model->num_params());
    st.rng = Rng(uint64_t(cfg.train.seed) ^ 0x5EEDull).state();
  }
  FW_CHECK(opt.stop_after == 0 || opt.stop_after > st.step, "--stop-after ", opt.stop_after,
           " is not after the run's current step ", st.step);
  const std::string data_dir = opt.data_dir.empty() ? st.data_dir : opt.data_dir;
  FW_CHECK(!data_dir.empty(), "train: --data DIR is required");
  st.data_dir = fs::absolute(data_dir).string();
  const TrainConfig& tc = cfg.train;
  const int64_t B = tc.micro_batch(), T = tc.seq_len, A = tc.grad_accum;
  DataFiles files = find_data_files(data_dir);
  const std::string data_tok = data_folder_tokenizer(data_dir, cfg.model.vocab_size);
  TokenLoader train_data(files.train, cfg.model.vocab_size);
  TokenLoader val_data(files.val, cfg.model.vocab_size);
  if (opt.resume)
    FW_CHECK(data_tok == tokenizer, data_dir, ": tokenizer '", data_tok, "' but the run was trained with '",
             tokenizer, "'");
  tokenizer = data_tok;
  train_data.set_position(st.data_pos);
  Rng rng;
  rng.set_state(st.rng);

  model->enable_grads();
  Activations acts(*model, B, T, true);
  fs::create_directories(opt.run_dir);
  const std::string metrics_path = (fs::path(opt.run_dir) / "metrics.jsonl").string();
  if (opt.resume) truncate_metrics(metrics_path, st.step);
  else std::ofstream(metrics_path, std::ios::trunc);
  std::ofstream(fs::path(opt.run_dir) / "config.json", std::ios::trunc) << to_json(cfg).dump(2) << "\n";
  std::ofstream metrics(metrics_path, std::ios::app);

  const FlopCount fc = count_flops(cfg.model, T);
  const double peak = sgemm_peak_flops();
  log(str("model: ", model->num_params(), " parameters (", model->num_params() - model->num_embedding_params(),
          " without embeddings); forward ", fc.forward_per_token() / 1e6, " MFLOP/token (exact), training ",
          fc.train_per_token() / 1e6, " MFLOP/token vs 6N = ", six_n_per_token(cfg.model) / 1e6));
  log(str("data: ", train_data.size(), " train tokens (", files.train, "), ", val_data.size(),
          " val tokens; tokenizer ", tokenizer, "; sgemm peak ", peak / 1e9, " GFLOP/s"));
  if (opt.resume) log(str("resuming ", opt.run_dir, " at step ", st.step, " of ", tc.steps));

  // ---- the loop -----------------------------------------------------------------
  TrainSummary sum;
  sum.flops_per_token = fc.train_per_token();
  std::vector<int32_t> inputs(static_cast<size_t>(B * T)), targets(static_cast<size_t>(B * T));
  const int64_t tokens_per_step = tc.batch_size * T;
  double train_seconds = 0, window_seconds = 0, window_loss = 0;
  int64_t window_steps = 0, steps_run = 0;
  auto save = [&]() {
    st.data_pos = train_data.position();
    st.rng = rng.state();
    save_checkpoint(opt.run_dir, *model, cfg, tokenizer, adam, st);
  };
  while (st.step < tc.steps) {
    const double t0 = now_seconds();
    model->grads.zero();
    double loss = 0;
    for (int64_t micro = 0; micro < A; micro++) {
      train_data.next_batch(inputs.data(), targets.data(), B, T);
      loss += model_forward(*model, acts, inputs.data(), targets.data()) / double(A);
      model_backward(*model, acts, inputs.data(), targets.data(), 1.0f / float(A));
    }
    const double lr = learning_rate(tc, st.step);
    const double gnorm = std::isfinite(loss) ? adam.update(*model, lr, tc.weight_decay, tc.grad_clip) : NAN;
    if (!std::isfinite(loss) || !std::isfinite(gnorm)) {
      fail("step ", st.step + 1, ": non-finite training loss (", loss, ") or gradient norm (", gnorm,
           "); stopped without saving (the last good checkpoint in ", opt.run_dir,
           " is kept); try a lower train.lr");
    }
    st.step++;
    steps_run++;
    const double dt = now_seconds() - t0;
    train_seconds += dt;
    window_seconds += dt;
    window_loss += loss;
    window_steps++;
    sum.train_loss = loss;

    const bool last = st.step == tc.steps;
    const bool do_eval = last || (tc.eval_every > 0 && st.step % tc.eval_every == 0);
    double val = NAN;
    if (do_eval) val = sum.val_loss = evaluate(*model, acts, val_data, tc.eval_tokens).loss;
    if (st.step % tc.log_every == 0 || last || do_eval) {
      const double tps = double(window_steps * tokens_per_step) / window_seconds;
      const double mfu = tps * fc.train_per_token() / peak;
      nlohmann::json row = {{"step", st.step}, {"loss", loss},
                            {"lr", lr}, {"grad_norm", gnorm}, {"tokens_per_s", tps}, {"mfu", mfu},
                            {"tokens", st.step * tokens_per_step},
                            {"flops", double(st.step * tokens_per_step) * fc.train_per_token()}};
      if (do_eval) row["val_loss"] = val;
      metrics << row.dump() << "\n" << std::flush;
      const double eta = double(tc.steps - st.step) * train_seconds / double(steps_run);
      char line[256];
      std::snprintf(line, sizeof(line), "step %6lld/%lld | loss %.4f | lr %.2e | %6.0f tok/s | MFU %4.1f%% | ETA %s%s",
                    (long long)st.step, (long long)tc.steps, window_loss / double(window_steps), lr, tps,
                    100 * mfu, eta_str(eta).c_str(), do_eval ? str(" | val ", val).c_str() : "");
      log(line);
      window_seconds = window_loss = 0;
      window_steps = 0;
    }
    const bool stop_now = opt.stop_after > 0 && st.step == opt.stop_after && !last;
    if (last || stop_now || (tc.ckpt_every > 0 && st.step % tc.ckpt_every == 0)) save();
    if (stop_now) {
      log(str("stopped after step ", st.step, " (--stop-after); continue with --resume ", opt.run_dir));
      break;
    }
  }
  sum.step = st.step;
  sum.finished = st.step == tc.steps;
  sum.tokens_per_s = steps_run ? double(steps_run * tokens_per_step) / train_seconds : 0;
  sum.mfu = sum.tokens_per_s * fc.train_per_token() / peak;
  return sum;
}

}  // namespace fw
