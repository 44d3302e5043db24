// Every scaling-law fit of one set of runs, as one JSON object: what `flopwise fit
// --json` prints, and what a sweep's fit.json holds per variant.
//   approach3:  E, A, B, alpha, beta, a, b (Huber on log loss, 4500 L-BFGS starts)
//   grid:       the same form fitted by variable projection (scaling/grid_fit.h), rms
//   bootstrap:  samples and 90% intervals of every coefficient, for both fits
//   approach2:  (isoflop) per-budget parabola minima and the power laws through them
//   budgets:    N_opt, D_opt and tokens per parameter of both fits at a few budgets
//   conventions: which parameter count and FLOP count the runs gave
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scaling/isoflop_fit.h"
#include "scaling/parametric_fit.h"
#include "scaling/runs.h"

namespace fw {

struct LawReportOptions {
  int bootstrap = 0;      // resampled refits for 90% intervals (0: none)
  uint64_t seed = 0;
  bool isoflop = false;   // add Approach 2
  double isoflop_tolerance = 0.1;
  std::string params_column = "params";  // recorded under conventions
  std::vector<double> budgets = {1e15, 1e18, 1e21, 1e24};
};

nlohmann::json law_json(const ScalingLaw& l);
// Approach 2's minima (flops, runs, n_opt, d_opt, loss) and power laws (a, b and coefficients).
nlohmann::json approach2_json(const IsoflopFit& iso);
nlohmann::json law_report(const std::vector<RunRecord>& runs, const LawReportOptions& o);

// The law named `fit` ("approach3" or "grid") in a law report `j` (fails naming `origin`).
ScalingLaw law_from_report(const nlohmann::json& j, const std::string& fit, const std::string& origin);

}  // namespace fw
