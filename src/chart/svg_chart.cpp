#include "chart/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace fw {

static const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string render_svg(const Chart& c) {
  const double W = 720, H = 480, left = 80, right = 190, top = 40, bottom = 60;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  auto tx = [&](double v) { return c.log_x ? std::log10(v) : v; };
  auto ty = [&](double v) { return c.log_y ? std::log10(v) : v; };
  for (const auto& s : c.series)
    for (size_t i = 0; i < s.x.size(); i++) {
      x0 = std::min(x0, tx(s.x[i]));
      x1 = std::max(x1, tx(s.x[i]));
      y0 = std::min(y0, ty(s.y[i]));
      y1 = std::max(y1, ty(s.y[i]));
    }
  if (!(x1 > x0)) x1 = x0 + 1;
  if (!(y1 > y0)) y1 = y0 + 1;
  const double px = 0.04 * (x1 - x0), py = 0.06 * (y1 - y0);
  x0 -= px, x1 += px, y0 -= py, y1 += py;
  auto X = [&](double v) { return left + (tx(v) - x0) / (x1 - x0) * (W - left - right); };
  auto Y = [&](double v) { return H - bottom - (ty(v) - y0) / (y1 - y0) * (H - top - bottom); };
  std::ostringstream o;
  o.precision(5);
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << c.title << "</text>\n";
  o << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << W - left - right << "\" height=\"" << H - top - bottom
    << "\" fill=\"none\" stroke=\"black\"/>\n";
  // ticks: decades on log axes, 5 even steps otherwise
  auto ticks = [](double lo, double hi, bool log) {
    std::vector<double> t;
    if (log) {  // decades; 1-2-5 within them when the axis spans under 3 decades
      for (double e = std::floor(lo); e <= hi; e++)
        for (double m : {1.0, 2.0, 5.0}) {
          const double v = e + std::log10(m);
          if (v >= lo && v <= hi && (m == 1.0 || hi - lo < 3)) t.push_back(v);
        }
    } else {
      for (int k = 0; k <= 5; k++) t.push_back(lo + (hi - lo) * k / 5);
    }
    return t;
  };
  auto label = [](double v, bool log) {
    std::ostringstream s;
    if (log) {
      const double e = std::floor(v + 1e-9);
      s << std::lround(std::pow(10.0, v - e)) << "e" << int(e);
    }
    else s << std::round(v * 1000) / 1000;
    return s.str();
  };
  for (double t : ticks(x0, x1, c.log_x)) {
    const double x = left + (t - x0) / (x1 - x0) * (W - left - right);
    o << "<line x1=\"" << x << "\" y1=\"" << H - bottom << "\" x2=\"" << x << "\" y2=\"" << H - bottom + 5
      << "\" stroke=\"black\"/><text x=\"" << x << "\" y=\"" << H - bottom + 18 << "\" text-anchor=\"middle\">"
      << label(t, c.log_x) << "</text>\n";
  }
  for (double t : ticks(y0, y1, c.log_y)) {
    const double y = H - bottom - (t - y0) / (y1 - y0) * (H - top - bottom);
    o << "<line x1=\"" << left - 5 << "\" y1=\"" << y << "\" x2=\"" << left << "\" y2=\"" << y
      << "\" stroke=\"black\"/><text x=\"" << left - 8 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">"
      << label(t, c.log_y) << "</text>\n";
  }
  o << "<text x=\"" << left + (W - left - right) / 2 << "\" y=\"" << H - 15 << "\" text-anchor=\"middle\">" << c.x_label
    << "</text>\n<text x=\"18\" y=\"" << top + (H - top - bottom) / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 18 "
    << top + (H - top - bottom) / 2 << ")\">" << c.y_label << "</text>\n";
  int legend = 0;
  for (const auto& s : c.series) {
    const char* col = kPalette[size_t(s.color) % 8];
    if (s.line) {
      o << "<polyline fill=\"none\" stroke=\"" << col << "\" stroke-width=\"1.5\" points=\"";
      for (size_t i = 0; i < s.x.size(); i++) o << X(s.x[i]) << "," << Y(s.y[i]) << " ";
      o << "\"/>\n";
    } else {
      for (size_t i = 0; i < s.x.size(); i++)
        o << "<circle cx=\"" << X(s.x[i]) << "\" cy=\"" << Y(s.y[i]) << "\" r=\"3.5\" fill=\"" << col << "\"/>\n";
    }
    if (!s.label.empty()) {
      const double ly = top + 10 + 18 * legend++;
      o << "<rect x=\"" << W - right + 15 << "\" y=\"" << ly - 8 << "\" width=\"10\" height=\"10\" fill=\"" << col
        << "\"/><text x=\"" << W - right + 30 << "\" y=\"" << ly + 1 << "\">" << s.label << "</text>\n";
    }
  }
  o << "</svg>\n";
  return o.str();
}

void write_svg(const std::string& path, const Chart& c) {
  std::ofstream out(path, std::ios::trunc);
  FW_CHECK(out, path, ": cannot write");
  out << render_svg(c);
  FW_CHECK(out, path, ": write failed");
}

}  // namespace fw
