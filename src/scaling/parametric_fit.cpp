#include "scaling/parametric_fit.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "scaling/lbfgs.h"

namespace fw {

double ScalingLaw::loss(double N, double D) const { return E + A / std::pow(N, alpha) + B / std::pow(D, beta); }
double ScalingLaw::G() const { return std::pow(alpha * A / (beta * B), 1.0 / (alpha + beta)); }
double ScalingLaw::n_opt(double C) const { return G() * std::pow(C / 6, a()); }
double ScalingLaw::d_opt(double C) const { return std::pow(C / 6, b()) / G(); }

double huber_objective(const std::vector<RunRecord>& runs, const std::vector<double>& th, std::vector<double>& grad,
                       double delta) {
  const double a = th[0], b = th[1], e = th[2], al = th[3], be = th[4];
  double f = 0;
  std::fill(grad.begin(), grad.end(), 0.0);
  for (const RunRecord& r : runs) {
    const double lN = std::log(r.params), lD = std::log(r.tokens);
    const double t1 = a - al * lN, t2 = b - be * lD, t3 = e;
    const double m = std::max({t1, t2, t3});
    const double e1 = std::exp(t1 - m), e2 = std::exp(t2 - m), e3 = std::exp(t3 - m), z = e1 + e2 + e3;
    const double res = m + std::log(z) - std::log(r.loss);
    double dres;  // ∂Huber/∂res
    if (std::abs(res) <= delta) {
      f += 0.5 * res * res;
      dres = res;
    } else {
      f += delta * (std::abs(res) - 0.5 * delta);
      dres = res > 0 ? delta : -delta;
    }
    const double w1 = e1 / z, w2 = e2 / z, w3 = e3 / z;  // ∂LSE/∂t_i
    grad[0] += dres * w1;
    grad[1] += dres * w2;
    grad[2] += dres * w3;
    grad[3] -= dres * w1 * lN;
    grad[4] -= dres * w2 * lD;
  }
  return f;
}

static ScalingLaw law_of(const std::vector<double>& th) {
  return {std::exp(th[2]), std::exp(th[0]), std::exp(th[1]), th[3], th[4]};
}

static LbfgsResult fit_from(const std::vector<RunRecord>& runs, const std::vector<double>& start) {
  return lbfgs_minimize([&](const std::vector<double>& x, std::vector<double>& g) { return huber_objective(runs, x, g); },
                        start);
}

FitResult fit_parametric(const std::vector<RunRecord>& runs) {
  FW_CHECK(runs.size() >= 5, "fit: ", runs.size(), " runs are too few for Approach 3's 5 parameters (need at least 5; "
           "a few dozen spread over sizes and budgets to trust it)");
  std::vector<std::vector<double>> grid;
  for (int ia = 0; ia <= 5; ia++)
    for (int ib = 0; ib <= 5; ib++)
      for (int ie = -2; ie <= 2; ie++)
        for (int ial = 0; ial <= 4; ial++)
          for (int ibe = 0; ibe <= 4; ibe++) grid.push_back({5.0 * ia, 5.0 * ib, 0.5 * ie, 0.5 * ial, 0.5 * ibe});
  std::vector<LbfgsResult> out(grid.size());
#pragma omp parallel for schedule(dynamic, 8)
  for (size_t i = 0; i < grid.size(); i++) out[i] = fit_from(runs, grid[i]);
  std::vector<size_t> order(grid.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) {
    const double fi = std::isfinite(out[i].f) ? out[i].f : INFINITY, fj = std::isfinite(out[j].f) ? out[j].f : INFINITY;
    return fi < fj;
  });
  const LbfgsResult& best = out[order[0]];
  FW_CHECK(std::isfinite(best.f), "fit: no start converged to a finite objective");
  FitResult r{law_of(best.x), best.f, int(grid.size()), {}, best.x};
  for (size_t k = 0; k < 8 && k < order.size(); k++) r.best_starts.push_back(grid[order[k]]);
  return r;
}

std::vector<ScalingLaw> bootstrap_laws(const std::vector<RunRecord>& runs, int samples, uint64_t seed,
                                       const std::function<ScalingLaw(const std::vector<RunRecord>&)>& fit) {
  FW_CHECK(samples >= 1, "--bootstrap ", samples, " must be >= 1");
  std::vector<ScalingLaw> laws(static_cast<size_t>(samples));
#pragma omp parallel for schedule(dynamic)
  for (int s = 0; s < samples; s++) {
    Rng rng(seed + uint64_t(s));
    std::vector<RunRecord> sample(runs.size());
    for (auto& r : sample) r = runs[rng.next_u64() % runs.size()];
    laws[size_t(s)] = fit(sample);
  }
  return laws;
}

std::vector<ScalingLaw> bootstrap_parametric(const std::vector<RunRecord>& runs, const FitResult& full, int samples,
                                             uint64_t seed) {
  return bootstrap_laws(runs, samples, seed, [&](const std::vector<RunRecord>& sample) {
    LbfgsResult best = fit_from(sample, full.theta);
    for (const auto& start : full.best_starts) {
      LbfgsResult o = fit_from(sample, start);
      if (o.f < best.f) best = o;
    }
    return law_of(best.x);
  });
}

}  // namespace fw
