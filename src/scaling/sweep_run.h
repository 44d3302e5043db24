// One training run of a sweep: its shape, its configuration for a FLOP budget, how it
// is trained (or resumed, or only evaluated when it already finished), and its row in
// a sweep's CSV files (OUT/runs.csv for the isoFLOP grid, OUT/tuning.csv for the
// learning-rate search). Every row records the run's hyperparameters.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "config/config.h"

namespace fw {

struct SweepShape {
  int64_t layers, d_model;  // head size 32: n_heads = d_model / 32
};

// "2x64" → 2 layers of width 64.
SweepShape parse_shape(const std::string& s);
std::string shape_name(const SweepShape& s);

// The hyperparameters a sweep chooses per run (the rest comes from the base config).
struct RunHyper {
  double lr, beta2;
  // Warmup in tokens per parameter (Porian et al. 2024: warm up for N tokens, so
  // warmup grows with the model); at most a fifth of the run. 0: the base config's
  // warmup steps, at most a tenth of the run (flopwise's sweeps before tuning).
  double warmup_tokens_per_param;
};

struct SweepRun {
  std::string variant;  // "dense" or "mod"
  int64_t layers, d_model;
  double params, params_without_embeddings;  // total (what fits use by default) and without the embedding
  double flops, tokens;                      // exact training FLOPs (output head included) and tokens
  int64_t steps;
  double lr, beta2;
  int64_t warmup;                            // steps
  double loss;                               // final validation loss; inf when the run diverged
  std::string run;                           // its folder name
};

// The configuration of one run: base with the shape, the variant, hyperparameters h
// (min_lr keeps base's min_lr/lr ratio) and the steps that spend `budget` training
// FLOPs at the exact FLOPs per token; validation only at the end.
Config sweep_config(const Config& base, const std::string& variant, const SweepShape& s, double budget,
                    const RunHyper& h);
// Exact training FLOPs per token, and parameters, of a variant and shape on base.
double sweep_flops_per_token(const Config& base, const std::string& variant, const SweepShape& s);
double sweep_params(const Config& base, const std::string& variant, const SweepShape& s);

// Trains the run in out_dir/name (a run that stopped part-way resumes from its checkpoint; one
// that finished is only evaluated) and returns its row. A run whose loss or gradient
// becomes non-finite is recorded as diverged (loss = inf), not as an error.
SweepRun train_sweep_run(const Config& cfg, const std::string& variant, const std::string& data_dir,
                         const std::string& out_dir, const std::string& name,
                         const std::function<void(const std::string&)>& log);

// A sweep CSV (empty when the file does not exist); bad rows fail naming file and line.
// Files of sweeps from before the tuning stage are read too (no lr, beta2, warmup,
// params_without_embeddings: NaN and 0).
std::vector<SweepRun> read_sweep_csv(const std::string& path);
// Fails, naming the file, unless it is missing, empty or in this flopwise's format.
void check_sweep_csv_appendable(const std::string& path);
// Appends one row, writing the header first when the file is new or empty.
void append_sweep_csv(const std::string& path, const SweepRun& r);

}  // namespace fw
