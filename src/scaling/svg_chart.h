// Minimal SVG line and scatter charts for the scaling-law reports (viewable in any
// browser): axes with decade (log) or plain ticks, one colour per series, a legend.
#pragma once
#include <string>
#include <vector>

#include "scaling/isoflop_fit.h"
#include "scaling/tuning.h"

namespace fw {

struct ChartSeries {
  std::string label;
  std::vector<double> x, y;
  bool line = false;  // a polyline through the points, else dots
  int color = 0;      // index into a fixed palette
};

struct Chart {
  std::string title, x_label, y_label;
  bool log_x = true, log_y = false;
  std::vector<ChartSeries> series;
};

std::string render_svg(const Chart& c);
void write_svg(const std::string& path, const Chart& c);

// The isoFLOP chart (loss against parameters per budget, with each fitted parabola)
// and the allocation chart (N_opt against C, minima and power law), for one or more
// labelled fits (e.g. dense and MoD).
Chart isoflop_chart(const std::vector<std::pair<std::string, IsoflopFit>>& fits);
Chart n_opt_chart(const std::vector<std::pair<std::string, IsoflopFit>>& fits);
// The tuning stage: loss against learning rate, one curve per variant and size.
Chart tuning_chart(const std::vector<VariantTuning>& tunings);

}  // namespace fw
