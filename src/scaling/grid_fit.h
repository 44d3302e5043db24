// Fitting a whole isoFLOP grid at once. Approach 2 fits a parabola in log N to each
// budget's runs and takes its vertex; but loss against log N is not a parabola (it
// rises faster on the side of small models), so the vertex lands where the sampled
// sizes pull it: a grid whose sizes lie mostly above one budget's minimum and mostly
// below another's tilts the fitted exponent. Here every run of every budget is fitted
// at once with the curve's own form, L(N, D) = E + A/N^α + B/D^β, by least squares on
// the loss, so where the sizes lie does not move the minimum.
//
// Variable projection: for fixed (α, β) the loss is linear in (E, A, B), whose least
// squares (non-negative: the best of the feasible solutions over every subset of the
// three) come in closed form. What remains is a smooth problem in two variables,
// solved by a grid over α, β ∈ [0.02, 2] and a compass search from its best point.
// No starting values, no local minima in (E, A, B).
#pragma once
#include <cstdint>
#include <vector>

#include "scaling/parametric_fit.h"
#include "scaling/runs.h"

namespace fw {

struct GridFit {
  ScalingLaw law;
  double rms;  // root mean square residual of the loss
};

// Needs at least 5 runs (errors say so).
GridFit fit_grid(const std::vector<RunRecord>& runs);

// `samples` refits on runs resampled with replacement (seeded).
std::vector<ScalingLaw> bootstrap_grid(const std::vector<RunRecord>& runs, int samples, uint64_t seed);

}  // namespace fw
