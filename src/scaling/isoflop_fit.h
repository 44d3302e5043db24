// Chinchilla's Approach 2 (Hoffmann et al. 2022, section 3.2): runs at a few fixed training budgets ("isoFLOP"
// groups); per budget, a parabola of loss against log N and its minimum; then power
// laws N_opt ∝ C^a and D_opt ∝ C^b through the minima (D = C / 6N).
#pragma once
#include <vector>

#include "scaling/runs.h"

namespace fw {

struct IsoflopMinimum {
  double flops;       // the group's budget (geometric mean of its runs' FLOPs)
  int runs;
  double n_opt, d_opt, loss;  // at the parabola's vertex
  double curvature;   // the parabola's coefficient of (log N)^2: > 0 for a minimum
  // for charts: the group's runs, and its parabola loss = c0 + c1 u + c2 u², u = log N − center
  std::vector<double> params, losses;
  double c0, c1, center;
};

struct PowerLaw {
  double exponent, coefficient;  // y = coefficient · C^exponent
};

struct IsoflopFit {
  std::vector<IsoflopMinimum> minima;
  PowerLaw n_opt, d_opt;  // fitted through the minima
};

// Groups runs whose FLOPs lie within a factor (1 + tolerance) of the group's smallest;
// needs at least 3 runs per group and 2 groups with a minimum (errors say how many).
IsoflopFit fit_isoflop(const std::vector<RunRecord>& runs, double tolerance = 0.1);

// Least-squares line through (log x, log y): y = c · x^e.
PowerLaw fit_power_law(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace fw
