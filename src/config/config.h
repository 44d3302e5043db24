// Run configuration: JSON with one object per section ("model", "train"), every
// field defaulted, unknown sections and fields rejected by name. `--set
// section.key=value` overrides a single field after the file is read.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "nn/config.h"

namespace fw {

struct TrainConfig {
  int64_t batch_size = 8;    // sequences per optimizer step (all micro-batches)
  int64_t seq_len = 256;     // tokens per sequence
  int64_t steps = 1000;      // optimizer steps of the whole schedule
  double lr = 1e-3;          // peak learning rate
  double min_lr = 1e-4;      // end of the cosine decay
  int64_t warmup = 100;      // linear warmup steps
  double beta1 = 0.9;        // AdamW's first-moment decay
  double beta2 = 0.95;       // AdamW's second-moment decay (0.99 can win at small batches)
  double weight_decay = 0.1; // decoupled; matrices only
  double grad_clip = 1.0;    // global gradient norm bound (0: off)
  int64_t grad_accum = 1;    // micro-batches per step; must divide batch_size
  int64_t seed = 1337;       // weight init and any sampling in training
  int64_t eval_every = 100;  // steps between validation passes (0: only at the end)
  int64_t eval_tokens = 32768;  // validation tokens per pass
  int64_t ckpt_every = 500;  // steps between checkpoints (0: only at the end)
  int64_t log_every = 10;    // steps between progress lines and metrics rows
  // matrix products in bf16 (fp32 accumulation, fp32 master weights): false, true, "auto"
  MatmulPrecision matmul_bf16 = MatmulPrecision::fp32;
  // Encoders (masked-LM): the share of each sequence's tokens chosen for the loss
  // (of them 80% become [MASK], 10% a random token, 10% stay), as in BERT.
  double mask_rate = 0.15;
  // True in bf16 mode; "auto" must have been resolved (training does, and records it).
  bool bf16() const;

  // Sequences per micro-batch on each of `ranks` data-parallel processes.
  int64_t micro_batch(int64_t ranks = 1) const { return batch_size / (ranks * grad_accum); }
  void validate() const;
};

struct Config {
  ModelConfig model;
  TrainConfig train;
  void validate() const;  // model, train, and how they fit together
};

nlohmann::json to_json(const Config& c);
// Applies the fields present in j onto c; `origin` names the source in errors.
void apply_json(Config& c, const nlohmann::json& j, const std::string& origin);
// Reads a JSON config file onto c.
void apply_config_file(Config& c, const std::string& path);
// "section.key=value", value parsed as JSON (numbers, true/false) or as a string.
void apply_set(Config& c, const std::string& assignment);

}  // namespace fw
