// isoFLOP sweeps that run the trainer (the MoD paper's analysis at CPU scale): every
// (variant, size, budget) run trains for the steps its exact training FLOPs per token
// allow within the budget (schedule matched to that length), its final validation
// loss goes into OUT/runs.csv, and Approach 2 per variant finds the isoFLOP minima.
// A sweep started again skips the runs already in runs.csv and resumes a run that
// stopped part-way from its checkpoint. Charts: OUT/isoflop.svg, OUT/n_opt.svg.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "scaling/isoflop_fit.h"
#include "train/config.h"

namespace fw {

struct SweepShape {
  int64_t layers, d_model;
};

struct SweepOptions {
  std::vector<double> budgets;       // training FLOPs per run
  std::vector<SweepShape> sizes;
  std::vector<std::string> variants; // "dense", "mod"
  std::string data_dir, out_dir;
  Config base;                       // everything but the shape (and mod.enabled)
  std::function<void(const std::string&)> log = nullptr;
};

struct SweepRun {
  std::string variant, run;
  int64_t layers, d_model, steps;
  double params, flops, tokens, loss;
};

struct SweepResult {
  std::vector<SweepRun> runs;          // all of runs.csv, this invocation's and earlier ones
  int trained = 0, skipped = 0;        // this invocation: trained (or resumed), already done
  std::vector<std::string> variants;
  std::vector<IsoflopFit> fits;        // per variant (empty minima when too few)
  std::vector<std::string> fit_errors; // per variant: why no fit ("" when fitted)
};

// "2x64" → 2 layers of width 64 (head size 32).
SweepShape parse_shape(const std::string& s);
// The config of one run: base with the shape, the variant, and steps for the budget.
Config sweep_config(const SweepOptions& o, const std::string& variant, const SweepShape& s, double budget);

SweepResult run_sweep(const SweepOptions& o);

// A sweep's runs.csv (empty when the file does not exist); bad rows fail by line.
std::vector<SweepRun> read_sweep_csv(const std::string& path);

}  // namespace fw
