// Chinchilla's Approach 1 (Hoffmann et al. 2022, section 3.1): several model sizes, each trained over a range of
// token counts; at each FLOP value the run with the lowest loss gives (C, N, D); power
// laws N_opt ∝ C^a and D_opt ∝ C^b through those points. Read from flopwise run
// folders: config.json (the model, for N) and metrics.jsonl (training loss, tokens and
// cumulative training FLOPs per logged step).
#pragma once
#include <string>
#include <vector>

#include "scaling/isoflop_fit.h"

namespace fw {

struct TrainingCurve {
  std::string run;
  double params;
  std::vector<double> flops, tokens, loss;  // per logged step, flops increasing
};

TrainingCurve read_training_curve(const std::string& run_dir);

struct EnvelopePoint {
  double flops, params, tokens, loss;  // the lowest-loss run at this FLOP value
  std::string run;
};

struct CurveFit {
  std::vector<EnvelopePoint> envelope;  // at `points` log-spaced FLOP values
  PowerLaw n_opt, d_opt;
};

// Needs at least 2 runs whose curves overlap in FLOPs, and 2 distinct sizes on the
// envelope (errors say so).
CurveFit fit_curves(const std::vector<TrainingCurve>& curves, int points = 20);

}  // namespace fw
