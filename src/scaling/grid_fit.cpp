#include "scaling/grid_fit.h"

#include <cmath>

#include "core/error.h"

namespace fw {

namespace {

// Columns of the linear part: 1, N^-α, D^-β (per run).
struct Projection {
  double coef[3];  // E, A, B
  double sse;      // sum of squared residuals
};

// Least squares of y on the columns in `mask` (bit k: column k), by the normal
// equations on columns scaled to unit norm; false when singular or a coefficient < 0.
bool solve_subset(const std::vector<double> cols[3], const std::vector<double>& y, int mask, Projection& p) {
  int idx[3], k = 0;
  for (int c = 0; c < 3; c++)
    if (mask >> c & 1) idx[k++] = c;
  double scale[3], M[3][3] = {}, r[3] = {};
  for (int i = 0; i < k; i++) {
    double s = 0;
    for (double v : cols[idx[i]]) s += v * v;
    if (!(s > 0)) return false;
    scale[i] = 1 / std::sqrt(s);
  }
  for (size_t n = 0; n < y.size(); n++)
    for (int i = 0; i < k; i++) {
      const double xi = cols[idx[i]][n] * scale[i];
      r[i] += xi * y[n];
      for (int j = 0; j < k; j++) M[i][j] += xi * cols[idx[j]][n] * scale[j];
    }
  // Gaussian elimination with partial pivoting on the k×k system
  double x[3];
  for (int c = 0; c < k; c++) {
    int piv = c;
    for (int i = c + 1; i < k; i++)
      if (std::abs(M[i][c]) > std::abs(M[piv][c])) piv = i;
    if (std::abs(M[piv][c]) < 1e-13) return false;
    std::swap(M[c], M[piv]);
    std::swap(r[c], r[piv]);
    for (int i = c + 1; i < k; i++) {
      const double f = M[i][c] / M[c][c];
      for (int j = c; j < k; j++) M[i][j] -= f * M[c][j];
      r[i] -= f * r[c];
    }
  }
  for (int c = k - 1; c >= 0; c--) {
    double s = r[c];
    for (int j = c + 1; j < k; j++) s -= M[c][j] * x[j];
    x[c] = s / M[c][c];
  }
  p.coef[0] = p.coef[1] = p.coef[2] = 0;
  for (int i = 0; i < k; i++) {
    if (x[i] < 0) return false;
    p.coef[idx[i]] = x[i] * scale[i];
  }
  p.sse = 0;
  for (size_t n = 0; n < y.size(); n++) {
    const double f = p.coef[0] * cols[0][n] + p.coef[1] * cols[1][n] + p.coef[2] * cols[2][n];
    p.sse += (f - y[n]) * (f - y[n]);
  }
  return true;
}

struct Problem {
  std::vector<double> logN, logD, y;

  // The best non-negative (E, A, B) for these exponents.
  Projection project(double alpha, double beta) const {
    std::vector<double> cols[3];
    for (size_t n = 0; n < y.size(); n++) {
      cols[0].push_back(1);
      cols[1].push_back(std::exp(-alpha * logN[n]));
      cols[2].push_back(std::exp(-beta * logD[n]));
    }
    Projection best{{0, 0, 0}, INFINITY};
    for (int mask = 1; mask < 8; mask++) {
      Projection p;
      if (solve_subset(cols, y, mask, p) && p.sse < best.sse) best = p;
    }
    return best;
  }
};

}  // namespace

GridFit fit_grid(const std::vector<RunRecord>& runs) {
  FW_CHECK(runs.size() >= 5, "fit: ", runs.size(), " runs are too few for the grid fit's 5 parameters (need at least 5)");
  Problem pb;
  for (const auto& r : runs) {
    pb.logN.push_back(std::log(r.params));
    pb.logD.push_back(std::log(r.tokens));
    pb.y.push_back(r.loss);
  }
  double ba = 0, bb = 0, bf = INFINITY;
  for (int i = 1; i <= 100; i++)
    for (int j = 1; j <= 100; j++) {
      const double a = 0.02 * i, b = 0.02 * j, f = pb.project(a, b).sse;
      if (f < bf) bf = f, ba = a, bb = b;
    }
  // compass search: try ± step in each exponent, halve the step when nothing improves
  for (double step = 0.01; step > 1e-9;) {
    bool moved = false;
    const double tries[4][2] = {{step, 0}, {-step, 0}, {0, step}, {0, -step}};
    for (const auto& t : tries) {
      const double a = ba + t[0], b = bb + t[1];
      if (a <= 0 || b <= 0) continue;
      const double f = pb.project(a, b).sse;
      if (f < bf) bf = f, ba = a, bb = b, moved = true;
    }
    if (!moved) step /= 2;
  }
  const Projection p = pb.project(ba, bb);
  return {{p.coef[0], p.coef[1], p.coef[2], ba, bb}, std::sqrt(bf / double(runs.size()))};
}

std::vector<ScalingLaw> bootstrap_grid(const std::vector<RunRecord>& runs, int samples, uint64_t seed) {
  return bootstrap_laws(runs, samples, seed, [](const std::vector<RunRecord>& sample) { return fit_grid(sample).law; });
}

}  // namespace fw
