// isoFLOP sweeps that run the trainer (the MoD paper's analysis at CPU scale). First,
// optionally, the tuning stage (scaling/tuning.h): a learning rate per model size and a
// power law lr_opt(N) per variant. Then every (variant, size, budget) run trains for
// the steps its exact training FLOPs per token allow within the budget, with the law's
// learning rate for its size, the tuned β2 and a warmup that grows with the model;
// its final validation loss and hyperparameters go into OUT/runs.csv. Bracketing: a
// budget whose best size is the smallest or largest of its runs gets a size beyond
// that edge (about half or twice the parameters), until its minimum is inside the
// grid, `bracket` sizes were added on that side, or no such size can run (said why).
// Approach 2 per variant finds the isoFLOP minima; OUT/fit.json holds, per variant, every
// fit of its runs (scaling/law_report.h: Approach 3 and the grid fit with bootstrap
// intervals, Approach 2), the tuning's lr law, and per budget each variant's best run.
// A sweep started again skips the runs its CSV files hold and resumes a run that
// stopped part-way from its checkpoint. Charts: OUT/isoflop.svg, OUT/n_opt.svg and,
// with tuning, OUT/tuning.svg.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scaling/isoflop_fit.h"
#include "scaling/sweep_run.h"
#include "scaling/tuning.h"
#include "config/config.h"

namespace fw {

struct SweepOptions {
  std::vector<double> budgets;       // training FLOPs per run
  std::vector<SweepShape> sizes;
  std::vector<std::string> variants; // "dense", "mod"
  std::string data_dir, out_dir;
  Config base;                       // everything but the shape (and mod.enabled)
  TuningOptions tuning;              // empty lrs: base lr and β2 for every run
  double warmup_tokens_per_param = 1;  // RunHyper::warmup_tokens_per_param (0: base warmup)
  int bracket = 0;                   // sizes a budget may add beyond each edge of its grid
  bool tune_only = false;            // stop after the tuning stage
  int bootstrap = 0;                 // resampled refits for the 90% intervals in fit.json
  std::function<void(const std::string&)> log = nullptr;
};

struct BracketStatus {
  std::string variant;
  double budget;
  bool bracketed;
  std::string note;  // what was added, or why the minimum could not be bracketed
};

struct SweepResult {
  std::vector<SweepRun> runs;          // all of runs.csv, this invocation's and earlier ones
  int trained = 0, skipped = 0;        // this invocation: trained (or resumed), already done (grid runs)
  int tuning_trained = 0;              // tuning runs trained (or resumed) by this invocation
  std::vector<VariantTuning> tuning;   // per variant (empty when not tuned)
  std::vector<BracketStatus> brackets; // per variant and budget
  std::vector<std::string> variants;
  std::vector<IsoflopFit> fits;        // per variant (empty minima when too few)
  std::vector<std::string> fit_errors; // per variant: why no fit ("" when fitted)
  nlohmann::json fit_json;             // what OUT/fit.json holds
};

// A variant's tuning as JSON: lr_law (coefficient, exponent), beta2, sizes (size,
// params, lr, beta2, loss), untuned (sizes asked for but not tuned).
nlohmann::json tuning_json(const VariantTuning& t);

// The hyperparameters a variant's run of `params` parameters gets.
RunHyper sweep_hyper(const SweepOptions& o, const VariantTuning* tuning, double params);

SweepResult run_sweep(const SweepOptions& o);

// A sweep shape with about `factor` times the parameters of `edge` (factor 2 or 1/2):
// layers 1..16, width a multiple of 32 in [32, 1024] and at least 16 per layer, the
// nearest in log parameters among those strictly beyond edge and not in `taken`;
// false when there is none.
bool neighbour_shape(const Config& base, const std::string& variant, const SweepShape& edge, double factor,
                     const std::vector<SweepShape>& taken, SweepShape& out);

}  // namespace fw
