#include "scaling/lbfgs.h"

#include <algorithm>
#include <cmath>
#include <deque>

namespace fw {

static double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
  return s;
}

LbfgsResult lbfgs_minimize(const Objective& f, std::vector<double> x, const LbfgsOptions& opt) {
  const size_t n = x.size();
  std::vector<double> g(n), g_new(n), x_new(n), d(n), q(n);
  double fx = f(x, g);
  struct Pair {
    std::vector<double> s, y;
    double rho;
  };
  std::deque<Pair> mem;
  int it = 0;
  for (; it < opt.max_iterations; it++) {
    double gmax = 0;
    for (double v : g) gmax = std::max(gmax, std::abs(v));
    if (!(gmax > opt.gtol)) break;
    // d = −H·g by the two-loop recursion
    q = g;
    std::vector<double> alpha(mem.size());
    for (size_t k = mem.size(); k-- > 0;) {
      alpha[k] = mem[k].rho * dot(mem[k].s, q);
      for (size_t i = 0; i < n; i++) q[i] -= alpha[k] * mem[k].y[i];
    }
    const double gamma = mem.empty() ? 1.0 / std::max(1.0, gmax) : dot(mem.back().s, mem.back().y) / dot(mem.back().y, mem.back().y);
    for (size_t i = 0; i < n; i++) q[i] *= gamma;
    for (size_t k = 0; k < mem.size(); k++) {
      const double beta = mem[k].rho * dot(mem[k].y, q);
      for (size_t i = 0; i < n; i++) q[i] += mem[k].s[i] * (alpha[k] - beta);
    }
    for (size_t i = 0; i < n; i++) d[i] = -q[i];
    double slope = dot(g, d);
    if (!(slope < 0)) {  // not a descent direction: restart along −g
      mem.clear();
      for (size_t i = 0; i < n; i++) d[i] = -g[i] / std::max(1.0, gmax);
      slope = dot(g, d);
    }
    // backtracking line search (Armijo, c = 1e-4)
    double step = 1.0, f_new = 0;
    bool found = false;
    for (int ls = 0; ls < 60; ls++) {
      for (size_t i = 0; i < n; i++) x_new[i] = x[i] + step * d[i];
      f_new = f(x_new, g_new);
      if (std::isfinite(f_new) && f_new <= fx + 1e-4 * step * slope) {
        found = true;
        break;
      }
      step *= 0.5;
    }
    if (!found) break;  // no decrease along d: as good as this method gets here
    Pair p{std::vector<double>(n), std::vector<double>(n), 0};
    for (size_t i = 0; i < n; i++) {
      p.s[i] = x_new[i] - x[i];
      p.y[i] = g_new[i] - g[i];
    }
    const double sy = dot(p.s, p.y);
    if (sy > 1e-16 * dot(p.y, p.y)) {  // keep only curvature that keeps H positive definite
      p.rho = 1.0 / sy;
      mem.push_back(std::move(p));
      if (int(mem.size()) > opt.memory) mem.pop_front();
    }
    const double decrease = fx - f_new;
    x.swap(x_new);
    g.swap(g_new);
    fx = f_new;
    if (decrease <= opt.ftol * std::max({std::abs(fx), std::abs(f_new), 1.0})) break;
  }
  return {x, fx, it};
}

}  // namespace fw
