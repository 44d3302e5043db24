// The tuning stage of a sweep: a learning rate (and AdamW β2) per model size, as Porian
// et al. 2024 found compute-optimal scaling needs at small scale (one learning rate for
// every size favours the sizes it happens to suit).
//
// Each size is tuned on D = tokens_per_param · N tokens — its compute-optimal length by
// Chinchilla's rule of thumb — rather than at the sweep's smallest budget, where the
// larger sizes would get a few dozen steps and their best rate would be that of a run
// far too short to matter. For each size: the log-spaced grid of learning rates with
// the first β2; while the best rate lies at an edge of the grid, one more rate beyond
// it (up to max_extensions per edge); then the other β2 values at the best rate. The
// size's optimum is the vertex of a parabola in log lr through the best rate and its
// two neighbours (finer than the grid). A power law lr_opt(N) = c·N^e is fitted
// through the sizes' optima and gives every run of the sweep its rate, at every
// budget; β2 is the value with the lowest mean loss over the tuned sizes. Sizes whose
// tuning runs would cost more than max_flops each are not tuned: the law extrapolates.
// Runs live in OUT/tuning/ and are recorded in OUT/tuning.csv (skipped when present).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "scaling/sweep_run.h"

namespace fw {

struct TuningOptions {
  std::vector<double> lrs;            // the starting grid (empty: no tuning, base lr and β2 everywhere)
  std::vector<double> beta2s = {0.95};  // the first during the learning-rate search
  double tokens_per_param = 20;
  double max_flops = 0;               // per tuning run; 0: no cap
  int max_extensions = 2;             // rates added beyond an edge of the grid that wins
};

struct LrLaw {
  double coefficient = 0, exponent = 0;  // lr_opt(N) = coefficient · N^exponent
  double at(double params) const;
};

struct TunedSize {
  SweepShape shape;
  double params;
  double lr, beta2;   // the optimum (lr: parabola vertex, or the best grid rate)
  double best_loss;   // the lowest loss its runs reached
};

struct VariantTuning {
  std::string variant;
  std::vector<TunedSize> sizes;         // tuned sizes, smallest first
  std::vector<SweepShape> untuned;      // asked for but not tuned (over the cost cap): rate from the law
  LrLaw lr_law;
  double beta2 = 0.95;
  std::vector<SweepRun> runs;           // this variant's rows of tuning.csv
};

// Tunes one variant over `sizes` (training, resuming or reading what tuning.csv holds),
// then analyses every size tuning.csv holds for it (analyse_tuning).
// `trained` counts the runs trained (or resumed) by this call.
VariantTuning tune_variant(const Config& base, const std::string& variant, const std::vector<SweepShape>& sizes,
                           const TuningOptions& o, double warmup_tokens_per_param, const std::string& data_dir,
                           const std::string& out_dir, const std::function<void(const std::string&)>& log,
                           int& trained);

// The tuned sizes, lr law and β2 from vt.runs (every size in them, not only those a
// call asked for, so that sweeps run budget by budget share one law).
void analyse_tuning(VariantTuning& vt, const std::vector<double>& beta2s);

// The tuning runs of one size for one β2, by learning rate: the index of the best (finite)
// loss and the parabola vertex around it in log lr (the best rate itself at an edge).
struct LrOptimum {
  size_t best;
  double lr;
};
LrOptimum lr_optimum(const std::vector<double>& lrs, const std::vector<double>& losses);

}  // namespace fw
