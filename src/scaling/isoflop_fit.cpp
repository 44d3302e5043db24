#include "scaling/isoflop_fit.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace fw {

PowerLaw fit_power_law(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = x.size();
  FW_CHECK(n >= 2, "fit: a power law needs at least 2 points, got ", n);
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < n; i++) {
    const double lx = std::log(x[i]), ly = std::log(y[i]);
    sx += lx;
    sy += ly;
    sxx += lx * lx;
    sxy += lx * ly;
  }
  const double den = double(n) * sxx - sx * sx;
  FW_CHECK(den > 0, "fit: the points share one x; no power law through them");
  const double e = (double(n) * sxy - sx * sy) / den;
  return {e, std::exp((sy - e * sx) / double(n))};
}

// Least squares y = c0 + c1 t + c2 t² (normal equations, 3×3, by Cramer's rule).
static void fit_parabola(const std::vector<double>& t, const std::vector<double>& y, double c[3]) {
  double S[5] = {0, 0, 0, 0, 0}, T[3] = {0, 0, 0};
  for (size_t i = 0; i < t.size(); i++) {
    double p = 1;
    for (int k = 0; k < 5; k++) {
      S[k] += p;
      if (k < 3) T[k] += p * y[i];
      p *= t[i];
    }
  }
  const double M[3][3] = {{S[0], S[1], S[2]}, {S[1], S[2], S[3]}, {S[2], S[3], S[4]}};
  auto det = [](const double m[3][3]) {
    return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
           m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  };
  const double d = det(M);
  FW_CHECK(std::abs(d) > 1e-300, "fit: an isoFLOP group's sizes do not determine a parabola");
  for (int k = 0; k < 3; k++) {
    double A[3][3];
    for (int r = 0; r < 3; r++)
      for (int col = 0; col < 3; col++) A[r][col] = col == k ? T[r] : M[r][col];
    c[k] = det(A) / d;
  }
}

IsoflopFit fit_isoflop(const std::vector<RunRecord>& all, double tolerance) {
  std::vector<RunRecord> runs = all;
  std::stable_sort(runs.begin(), runs.end(), [](const RunRecord& a, const RunRecord& b) { return a.flops < b.flops; });
  IsoflopFit fit;
  int groups = 0;
  for (size_t i = 0; i < runs.size();) {
    size_t j = i;
    while (j < runs.size() && runs[j].flops <= runs[i].flops * (1 + tolerance)) j++;
    if (j - i >= 3) {
      groups++;
      std::vector<double> t, y;
      double logc = 0;
      for (size_t k = i; k < j; k++) {
        t.push_back(std::log(runs[k].params));
        y.push_back(runs[k].loss);
        logc += std::log(runs[k].flops) / double(j - i);
      }
      // centre log N for a well-conditioned fit
      double mean = 0;
      for (double v : t) mean += v / double(t.size());
      for (auto& v : t) v -= mean;
      double c[3];
      fit_parabola(t, y, c);
      if (c[2] > 0) {
        const double tv = -c[1] / (2 * c[2]), C = std::exp(logc), N = std::exp(tv + mean);
        IsoflopMinimum m{C, int(j - i), N, C / (6 * N), c[0] + c[1] * tv + c[2] * tv * tv, c[2], {}, {}, c[0], c[1], mean};
        for (size_t k = i; k < j; k++) {
          m.params.push_back(runs[k].params);
          m.losses.push_back(runs[k].loss);
        }
        fit.minima.push_back(m);
      }
    }
    i = j;
  }
  FW_CHECK(fit.minima.size() >= 2, "fit --isoflop: ", fit.minima.size(), " of ", groups,
           " isoFLOP groups (runs within ", tolerance * 100, "% of one budget, 3 or more each) have a loss "
           "minimum over size; need at least 2");
  std::vector<double> C, N, D;
  for (const auto& m : fit.minima) {
    C.push_back(m.flops);
    N.push_back(m.n_opt);
    D.push_back(m.d_opt);
  }
  fit.n_opt = fit_power_law(C, N);
  fit.d_opt = fit_power_law(C, D);
  return fit;
}

}  // namespace fw
