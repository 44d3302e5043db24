// Minimal SVG line and scatter charts (viewable in any browser, inlined by the HTML
// report): axes with decade (log) or plain ticks, one colour per series, a legend.
#pragma once
#include <string>
#include <vector>

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

}  // namespace fw
