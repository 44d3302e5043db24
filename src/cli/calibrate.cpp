// flopwise calibrate: sampling's routing thresholds for a Mixture-of-Depths checkpoint
// (infer/calibration.h), written into its model.safetensors. Training calibrates at its
// end; this command is for checkpoints made before that, or stopped early, or to
// calibrate on other text.
#include "cli/common.h"
#include "core/error.h"
#include "core/timer.h"
#include "batching/loader.h"
#include "infer/calibration.h"
#include "train/checkpoint.h"

namespace fw::cli {

namespace {
struct CalibrateFlags {
  std::string ckpt, data;
  int64_t tokens = 0;
  CommonFlags common;
};

void run_calibrate(const CalibrateFlags& f) {
  f.common.apply();
  LoadedModel lm = load_model(f.ckpt);
  const ModelConfig& mc = lm.config.model;
  const TrainConfig& tc = lm.config.train;
  FW_CHECK(mc.mod.enabled, model_file(f.ckpt), ": not a Mixture-of-Depths model (mod.enabled = false); nothing to calibrate");
  FW_CHECK(!mc.encoder(), model_file(f.ckpt), ": an encoder routes by top-k and does not sample; nothing to calibrate");
  FW_CHECK(f.tokens >= 0, "--tokens must be >= 0");
  TokenLoader val(validation_file_for(lm, f.data), mc.vocab_size);
  lm.model->set_matmul_bf16(tc.bf16());  // the numerics sampling will use
  const double t0 = now_seconds();
  lm.model->calibration = calibrate_causal(*lm.model, val, f.tokens > 0 ? f.tokens : tc.eval_tokens, tc.seq_len);
  const double seconds = now_seconds() - t0;
  save_model(f.ckpt, *lm.model, lm.config, lm.tokenizer, lm.step);
  std::vector<int64_t> layers;
  std::vector<float> thresholds;
  for (int64_t l = 0; l < mc.n_layers; l++)
    if (mc.mod.routed(l)) {
      layers.push_back(l);
      thresholds.push_back(lm.model->calibration.threshold[size_t(l)]);
      std::printf("block %lld: threshold %.4f on the %s logit\n", (long long)l, double(thresholds.back()),
                  mc.mod.decides_by_predictor() ? "predictor's" : "router's");
    }
  std::printf("calibrated on %lld tokens in %.1f s; written to %s (flopwise eval shows both routings)\n",
              (long long)lm.model->calibration.tokens, seconds, model_file(f.ckpt).c_str());
  if (f.common.json)
    print_json({{"routed_layers", layers}, {"thresholds", thresholds}, {"tokens", lm.model->calibration.tokens},
                {"seconds", seconds}, {"file", model_file(f.ckpt)}});
}
}  // namespace

void register_calibrate(CLI::App& app) {
  auto f = std::make_shared<CalibrateFlags>();
  auto* sub = app.add_subcommand(
      "calibrate", "set a Mixture-of-Depths checkpoint's sampling thresholds so each routed block processes its capacity");
  sub->add_option("--ckpt", f->ckpt, "run folder or model.safetensors (rewritten in place)")->required();
  sub->add_option("--data", f->data, "data folder whose val.bin to calibrate on")->required();
  sub->add_option("--tokens", f->tokens, "calibration tokens (default: the config's train.eval_tokens)");
  f->common.add(sub);
  sub->callback([f]() { run_calibrate(*f); });
}

}  // namespace fw::cli
