// Chinchilla's Approach 3 (Hoffmann et al. 2022, section 3.3): the parametric loss L(N, D) = E + A/N^α + B/D^β,
// fitted as Hoffmann et al. and Epoch AI's replication do: minimise the SUM over runs
// of Huber_δ(LSE(a − α log N, b − β log D, e) − log L) with δ = 1e-3, A = e^a,
// B = e^b, E = e^e, by L-BFGS from every point of the grid α, β ∈ {0, 0.5, …, 2},
// e ∈ {−1, −0.5, …, 1}, a, b ∈ {0, 5, …, 25} (4500 starts), keeping the best.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "scaling/runs.h"

namespace fw {

struct ScalingLaw {
  double E, A, B, alpha, beta;
  double loss(double N, double D) const;
  // Compute-optimal allocation for C ≈ 6ND training FLOPs (closed form):
  // N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b, a = β/(α+β), b = α/(α+β), G = (αA/(βB))^(1/(α+β)).
  double a() const { return beta / (alpha + beta); }
  double b() const { return alpha / (alpha + beta); }
  double G() const;
  double n_opt(double C) const;
  double d_opt(double C) const;
};

struct FitResult {
  ScalingLaw law;
  double objective;  // the Huber sum at the optimum
  int starts;        // L-BFGS starts run
  std::vector<std::vector<double>> best_starts;  // the grid points whose runs ended lowest (θ, 8 of them)
  std::vector<double> theta;                     // the optimum (a, b, e, α, β)
};

constexpr double kHuberDelta = 1e-3;

// The Huber objective at θ = (a, b, e, α, β) and its gradient.
double huber_objective(const std::vector<RunRecord>& runs, const std::vector<double>& theta, std::vector<double>& grad,
                       double delta = kHuberDelta);

// Approach 3 from the full grid (starts run in parallel).
FitResult fit_parametric(const std::vector<RunRecord>& runs);

// `samples` refits by `fit` on runs resampled with replacement (seeded), in parallel.
std::vector<ScalingLaw> bootstrap_laws(const std::vector<RunRecord>& runs, int samples, uint64_t seed,
                                       const std::function<ScalingLaw(const std::vector<RunRecord>&)>& fit);

// Bootstrap: `samples` refits on runs resampled with replacement (seeded), each from
// the full-data optimum and the grid's best starts; returns the laws.
std::vector<ScalingLaw> bootstrap_parametric(const std::vector<RunRecord>& runs, const FitResult& full, int samples,
                                             uint64_t seed);

}  // namespace fw
