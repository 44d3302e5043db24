#include "scaling/charts.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.h"

namespace fw {

Chart isoflop_chart(const std::vector<std::pair<std::string, IsoflopFit>>& fits) {
  Chart c{"isoFLOP profiles: final loss against model size, per budget", "parameters N", "validation loss", true, false, {}};
  int color = 0;
  for (const auto& [name, fit] : fits)
    for (const auto& m : fit.minima) {
      std::ostringstream label;
      label.precision(2);
      label << name << " C=" << m.flops;
      ChartSeries dots{label.str(), m.params, m.losses, false, color};
      const auto [lo, hi] = std::minmax_element(m.params.begin(), m.params.end());
      ChartSeries curve{"", {}, {}, true, color};
      for (int k = 0; k <= 40; k++) {
        const double u = std::log(*lo) + (std::log(*hi) - std::log(*lo)) * k / 40 - m.center;
        curve.x.push_back(std::exp(u + m.center));
        curve.y.push_back(m.c0 + m.c1 * u + m.curvature * u * u);
      }
      c.series.push_back(dots);
      c.series.push_back(curve);
      color++;
    }
  return c;
}

Chart n_opt_chart(const std::vector<std::pair<std::string, IsoflopFit>>& fits) {
  Chart c{"compute-optimal model size", "training FLOPs C", "N_opt (parameters)", true, true, {}};
  int color = 0;
  for (const auto& [name, fit] : fits) {
    ChartSeries dots{name + " minima", {}, {}, false, color};
    for (const auto& m : fit.minima) {
      dots.x.push_back(m.flops);
      dots.y.push_back(m.n_opt);
    }
    std::ostringstream label;
    label.precision(3);
    label << name << " N ~ C^" << fit.n_opt.exponent;
    ChartSeries line{label.str(), {}, {}, true, color};
    const auto [lo, hi] = std::minmax_element(dots.x.begin(), dots.x.end());
    for (double C : {*lo, *hi}) {
      line.x.push_back(C);
      line.y.push_back(fit.n_opt.coefficient * std::pow(C, fit.n_opt.exponent));
    }
    c.series.push_back(dots);
    c.series.push_back(line);
    color++;
  }
  return c;
}


Chart tuning_chart(const std::vector<VariantTuning>& tunings) {
  Chart c{"learning-rate tuning: loss against peak learning rate, per size (first beta2)", "peak learning rate",
          "validation loss", true, false, {}};
  int color = 0;
  for (const auto& t : tunings) {
    const double beta2 = t.runs.empty() ? 0 : t.runs.front().beta2;  // the lr search's β2 comes first
    for (const auto& size : t.sizes) {
      ChartSeries dots{str(t.variant, " ", shape_name(size.shape), " (lr_opt ", size.lr, ")"), {}, {}, false, color};
      std::vector<std::pair<double, double>> pts;
      for (const auto& r : t.runs)
        if (r.layers == size.shape.layers && r.d_model == size.shape.d_model && r.beta2 == beta2 &&
            std::isfinite(r.loss))
          pts.push_back({r.lr, r.loss});
      std::sort(pts.begin(), pts.end());
      for (const auto& [x, y] : pts) dots.x.push_back(x), dots.y.push_back(y);
      ChartSeries line{"", dots.x, dots.y, true, color};
      c.series.push_back(dots);
      c.series.push_back(line);
      color++;
    }
  }
  return c;
}

}  // namespace fw
