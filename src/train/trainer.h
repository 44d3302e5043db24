// The training loop: AdamW with warmup + cosine, gradient accumulation, clipping,
// periodic validation, checkpoints, exact resume, and a stop on NaN/Inf loss that
// keeps the last good checkpoint.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>

#include "nn/model.h"
#include "parallel/comm.h"
#include "config/config.h"

namespace fw {

// What on_step sees after every optimizer step.
struct StepReport {
  int64_t step = 0, steps = 0;  // done, of the run's train.steps
  double loss = 0;              // this step's training loss
  double lr = 0;                // its learning rate
  double val_loss = NAN;        // when this step validated, else NaN
  double train_seconds = 0;     // the run's training time so far
};

struct TrainOptions {
  std::string data_dir;    // holds train.bin and val.bin (resume: empty = the run's own)
  std::string run_dir;     // output run folder (created), or the run to resume
  bool resume = false;     // continue run_dir from its checkpoint
  int64_t stop_after = 0;  // > 0: end this invocation after that step, with a checkpoint
  std::function<void(const std::string&)> log = nullptr;  // progress lines (null: silent)
  // Data-parallel ranks (null: this process alone). Each reads its slice of every
  // global batch; gradients are averaged across ranks; rank 0 writes the run folder.
  Comm* comm = nullptr;
  bool zero1 = false;  // shard the AdamW moments across ranks (ZeRO stage 1)
  // After every step (one process only): returning false stops the run there with a
  // checkpoint, as --stop-after does (the Python module's callbacks and Ctrl-C).
  std::function<bool(const StepReport&)> on_step = nullptr;
};

struct TrainSummary {
  int64_t step = 0;
  double train_loss = 0;  // last logged training loss
  double val_loss = NAN;  // last validation loss of this invocation (NaN: none ran; JSON null)
  double val_accuracy = NAN;  // encoders: its masked-LM accuracy
  double tokens_per_s = 0, mfu = 0;     // over this invocation's steps
  double flops_per_token = 0;           // exact training FLOPs per token (3 × forward)
  int ranks = 1;                        // data-parallel processes (tokens_per_s is all of theirs)
  double comm_share = 0;                // share of the step time spent in collectives
  bool finished = false;                // reached train.steps
  bool bf16 = false;                    // trained with bf16 matrix products (train.matmul_bf16, "auto" decided)
};

// Fresh run: cfg is used. Resume: the run's saved config is used (cfg ignored).
TrainSummary run_training(const Config& cfg, const TrainOptions& opt);

// Bytes one process of a training run allocates (weights, gradients, AdamW moments,
// activations) among `ranks` data-parallel ones, whose moments are sharded with
// ZeRO-1; refused before allocation when the machine lacks them.
size_t training_memory_bytes(const Config& cfg, int ranks = 1, bool zero1 = false);

}  // namespace fw
