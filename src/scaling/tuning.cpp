#include "scaling/tuning.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "scaling/isoflop_fit.h"

namespace fw {

double LrLaw::at(double params) const { return coefficient * std::pow(params, exponent); }

LrOptimum lr_optimum(const std::vector<double>& lrs, const std::vector<double>& losses) {
  FW_CHECK(!lrs.empty() && lrs.size() == losses.size(), "internal: lr_optimum of ", lrs.size(), " rates and ",
           losses.size(), " losses");
  size_t b = 0;
  for (size_t i = 1; i < lrs.size(); i++)
    if (losses[i] < losses[b]) b = i;
  LrOptimum o{b, lrs[b]};
  if (b == 0 || b + 1 == lrs.size() || !std::isfinite(losses[b - 1]) || !std::isfinite(losses[b + 1])) return o;
  // parabola through the three points in x = log lr: its vertex
  const double x0 = std::log(lrs[b - 1]), x1 = std::log(lrs[b]), x2 = std::log(lrs[b + 1]);
  const double y0 = losses[b - 1], y1 = losses[b], y2 = losses[b + 1];
  const double d01 = (y1 - y0) / (x1 - x0), d12 = (y2 - y1) / (x2 - x1), curvature = (d12 - d01) / (x2 - x0);
  if (curvature <= 0) return o;
  const double vertex = 0.5 * (x0 + x1) - d01 / (2 * curvature);
  o.lr = std::exp(std::clamp(vertex, x0, x2));
  return o;
}

static std::string tuning_name(const std::string& variant, const SweepShape& s, double lr, double beta2) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "tuning/%s_%s_lr%.4g_b%.4g", variant.c_str(), shape_name(s).c_str(), lr, beta2);
  return buf;
}

VariantTuning tune_variant(const Config& base, const std::string& variant, const std::vector<SweepShape>& sizes,
                           const TuningOptions& o, double warmup_tokens_per_param, const std::string& data_dir,
                           const std::string& out_dir, const std::function<void(const std::string&)>& log,
                           int& trained) {
  VariantTuning vt;
  vt.variant = variant;
  vt.lr_law = {base.train.lr, 0};
  vt.beta2 = o.beta2s.empty() ? base.train.beta2 : o.beta2s.front();
  const std::string csv = out_dir + "/tuning.csv";
  std::vector<SweepRun> done = read_sweep_csv(csv);
  const int64_t tokens_per_step = base.train.batch_size * base.train.seq_len;
  // one tuning run: its loss, from tuning.csv or trained now
  auto loss_at = [&](const SweepShape& s, double lr, double beta2) {
    const std::string name = tuning_name(variant, s, lr, beta2);
    for (const auto& r : done)
      if (r.run == name) return r.loss;
    const double tokens = o.tokens_per_param * sweep_params(base, variant, s);
    const double budget = sweep_flops_per_token(base, variant, s) * tokens;
    const Config cfg = sweep_config(base, variant, s, budget, {lr, beta2, warmup_tokens_per_param});
    const SweepRun r = train_sweep_run(cfg, variant, data_dir, out_dir, name, log);
    append_sweep_csv(csv, r);
    done.push_back(r);
    trained++;
    return r.loss;
  };
  if (o.lrs.empty()) return vt;
  std::vector<SweepShape> order = sizes;
  std::stable_sort(order.begin(), order.end(),
                   [&](const SweepShape& a, const SweepShape& b) { return sweep_params(base, variant, a) < sweep_params(base, variant, b); });
  // train what is missing for the sizes asked for
  for (const SweepShape& s : order) {
    const double N = sweep_params(base, variant, s), tokens = o.tokens_per_param * N;
    const double cost = sweep_flops_per_token(base, variant, s) * tokens;
    if ((o.max_flops > 0 && cost > o.max_flops) || tokens / double(tokens_per_step) < 10) continue;
    std::vector<double> lrs = o.lrs;
    std::sort(lrs.begin(), lrs.end());
    const double ratio = lrs.size() > 1 ? lrs[1] / lrs[0] : 2.0;
    std::vector<double> losses;
    for (double lr : lrs) losses.push_back(loss_at(s, lr, vt.beta2));
    for (int low = 0, high = 0;;) {  // extend the grid past a winning edge
      const size_t b = lr_optimum(lrs, losses).best;
      if (b == 0 && low < o.max_extensions) {
        lrs.insert(lrs.begin(), lrs.front() / ratio);
        losses.insert(losses.begin(), loss_at(s, lrs.front(), vt.beta2));
        low++;
      } else if (b + 1 == lrs.size() && high < o.max_extensions) {
        lrs.push_back(lrs.back() * ratio);
        losses.push_back(loss_at(s, lrs.back(), vt.beta2));
        high++;
      } else {
        break;
      }
    }
    const double best_lr = lrs[lr_optimum(lrs, losses).best];
    for (size_t k = 1; k < o.beta2s.size(); k++) loss_at(s, best_lr, o.beta2s[k]);
  }
  for (const auto& r : done)
    if (r.variant == variant) vt.runs.push_back(r);
  analyse_tuning(vt, o.beta2s);
  for (const SweepShape& s : order) {
    bool tuned = false;
    for (const auto& t : vt.sizes) tuned |= t.shape.layers == s.layers && t.shape.d_model == s.d_model;
    if (!tuned) vt.untuned.push_back(s);
  }
  return vt;
}

void analyse_tuning(VariantTuning& vt, const std::vector<double>& beta2s) {
  vt.sizes.clear();
  if (beta2s.empty()) return;
  // the shapes in the records, smallest first
  std::vector<std::pair<double, SweepShape>> shapes;
  for (const auto& r : vt.runs) {
    bool seen = false;
    for (const auto& [n, s] : shapes) seen |= s.layers == r.layers && s.d_model == r.d_model;
    if (!seen) shapes.push_back({r.params, {r.layers, r.d_model}});
  }
  std::stable_sort(shapes.begin(), shapes.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::vector<double>> beta2_losses;  // (tuned sizes, beta2s): at each size's best grid rate
  for (const auto& [N, s] : shapes) {
    auto of_shape = [&, s = s](const SweepRun& r) { return r.layers == s.layers && r.d_model == s.d_model; };
    std::vector<std::pair<double, double>> pts;  // (lr, loss) at the search's β2
    for (const auto& r : vt.runs)
      if (of_shape(r) && r.beta2 == beta2s[0]) pts.push_back({r.lr, r.loss});
    if (pts.empty()) continue;
    std::sort(pts.begin(), pts.end());
    std::vector<double> lrs, losses;
    for (const auto& [lr, l] : pts) lrs.push_back(lr), losses.push_back(l);
    const LrOptimum opt = lr_optimum(lrs, losses);
    TunedSize t{s, N, opt.lr, beta2s[0], losses[opt.best]};
    std::vector<double> by_beta2 = {losses[opt.best]};
    for (size_t k = 1; k < beta2s.size(); k++) {
      double l = INFINITY;
      for (const auto& r : vt.runs)
        if (of_shape(r) && r.beta2 == beta2s[k] && r.lr == lrs[opt.best]) l = r.loss;
      by_beta2.push_back(l);
      if (l < t.best_loss) t.best_loss = l, t.beta2 = beta2s[k];
    }
    vt.sizes.push_back(t);
    beta2_losses.push_back(by_beta2);
  }
  // β2: the value with the lowest mean loss over the tuned sizes, at their best grid rates
  double best_mean = INFINITY;
  vt.beta2 = beta2s[0];
  for (size_t k = 0; k < beta2s.size() && !vt.sizes.empty(); k++) {
    double sum = 0;
    for (const auto& l : beta2_losses) sum += l[k];
    if (sum < best_mean) best_mean = sum, vt.beta2 = beta2s[k];
  }
  if (vt.sizes.size() == 1) vt.lr_law = {vt.sizes[0].lr, 0};
  if (vt.sizes.size() >= 2) {
    std::vector<double> n, lr;
    for (const auto& t : vt.sizes) n.push_back(t.params), lr.push_back(t.lr);
    const PowerLaw p = fit_power_law(n, lr);
    vt.lr_law = {p.coefficient, p.exponent};
  }
}

}  // namespace fw
