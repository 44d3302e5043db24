#include "scaling/curve_fit.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "core/error.h"
#include "nn/model.h"
#include "config/config.h"
#include "formats/run_folder.h"

namespace fw {

TrainingCurve read_training_curve(const std::string& run_dir) {
  TrainingCurve c;
  c.run = run_dir;
  Config cfg;
  apply_config_file(cfg, run_path(run_dir, run_file::config));
  c.params = double(Model::count_params(cfg.model));
  const std::string path = run_path(run_dir, run_file::metrics);
  const std::vector<MetricsRow> rows = read_metrics(path);
  for (size_t i = 0; i < rows.size(); i++) {
    const double f = rows[i].flops, t = rows[i].tokens, l = rows[i].loss;
    FW_CHECK(f > 0 && t > 0 && std::isfinite(l) && l > 0, path, ": step ", rows[i].step,
             ": flops, tokens and loss must be positive");
    FW_CHECK(c.flops.empty() || f > c.flops.back(), path, ": step ", rows[i].step, ": flops do not increase");
    c.flops.push_back(f);
    c.tokens.push_back(t);
    c.loss.push_back(l);
  }
  FW_CHECK(c.flops.size() >= 2, path, ": ", c.flops.size(), " logged steps; a curve needs at least 2");
  return c;
}

// Linear interpolation in log FLOPs of y at C (C within the curve's range).
static double at(const TrainingCurve& c, const std::vector<double>& y, double C) {
  const auto it = std::lower_bound(c.flops.begin(), c.flops.end(), C);
  const size_t i = size_t(it - c.flops.begin());
  if (i == 0) return y[0];
  const double u = (std::log(C) - std::log(c.flops[i - 1])) / (std::log(c.flops[i]) - std::log(c.flops[i - 1]));
  return y[i - 1] + u * (y[i] - y[i - 1]);
}

CurveFit fit_curves(const std::vector<TrainingCurve>& curves, int points) {
  FW_CHECK(curves.size() >= 2, "fit --curves: ", curves.size(), " runs; Approach 1 needs at least 2 model sizes");
  FW_CHECK(points >= 2, "fit --curves: at least 2 FLOP values");
  // the FLOP range where at least two curves are defined
  std::vector<double> starts, ends;
  for (const auto& c : curves) {
    starts.push_back(c.flops.front());
    ends.push_back(c.flops.back());
  }
  std::sort(starts.begin(), starts.end());
  std::sort(ends.begin(), ends.end());
  const double lo = starts[1], hi = ends.back();
  FW_CHECK(lo < hi, "fit --curves: the runs' FLOP ranges do not overlap");
  CurveFit fit;
  std::set<double> sizes;
  for (int p = 0; p < points; p++) {
    const double C = std::exp(std::log(lo) + (std::log(hi) - std::log(lo)) * double(p) / double(points - 1));
    const TrainingCurve* best = nullptr;
    double best_loss = INFINITY;
    for (const auto& c : curves) {
      if (C < c.flops.front() || C > c.flops.back()) continue;
      const double l = at(c, c.loss, C);
      if (l < best_loss) {
        best_loss = l;
        best = &c;
      }
    }
    if (!best) continue;
    fit.envelope.push_back({C, best->params, at(*best, best->tokens, C), best_loss, best->run});
    sizes.insert(best->params);
  }
  FW_CHECK(sizes.size() >= 2, "fit --curves: one model size is best at every FLOP value; Approach 1 needs the "
           "envelope to pass through at least 2 sizes (train a wider range of sizes or longer)");
  std::vector<double> C, N, D;
  for (const auto& e : fit.envelope) {
    C.push_back(e.flops);
    N.push_back(e.params);
    D.push_back(e.tokens);
  }
  fit.n_opt = fit_power_law(C, N);
  fit.d_opt = fit_power_law(C, D);
  return fit;
}

}  // namespace fw
