// flopwise fit: scaling-law fits to a CSV of training runs (SPEC §3). Approach 3,
// the parametric L(N, D) = E + A/N^α + B/D^β, with bootstrap intervals; with
// --isoflop also Approach 2 (parabolas per budget, power laws through their minima);
// with --curves, Approach 1 from the training curves of run folders.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "scaling/curve_fit.h"
#include "scaling/isoflop_fit.h"
#include "scaling/parametric_fit.h"
#include "scaling/svg_chart.h"

namespace fw::cli {

namespace {
struct FitFlags {
  std::string runs;
  std::vector<std::string> curves;
  int drop_highest = 0, bootstrap = 0;
  bool isoflop = false;
  double isoflop_tolerance = 0.1;
  std::string svg;
  uint64_t seed = 0;
  CommonFlags common;
};

const double kBudgets[] = {1e15, 1e18, 1e21, 1e24};

nlohmann::json law_json(const ScalingLaw& l) {
  return {{"E", l.E}, {"A", l.A}, {"B", l.B}, {"alpha", l.alpha}, {"beta", l.beta}, {"a", l.a()}, {"b", l.b()}};
}

// Approach 1: the envelope of the training curves and the power laws through it.
void run_curves(const FitFlags& f) {
  std::vector<TrainingCurve> curves;
  for (const auto& r : f.curves) curves.push_back(read_training_curve(r));
  const CurveFit fit = fit_curves(curves);
  nlohmann::json env = nlohmann::json::array();
  for (const auto& e : fit.envelope)
    env.push_back({{"flops", e.flops}, {"params", e.params}, {"tokens", e.tokens}, {"loss", e.loss}, {"run", e.run}});
  nlohmann::json j = {{"approach1", {{"a", fit.n_opt.exponent}, {"b", fit.d_opt.exponent}, {"envelope", env}}}};
  if (f.common.json) {
    print_json(j);
    return;
  }
  std::printf("Approach 1 over %zu training curves: N_opt ~ C^%.3f, D_opt ~ C^%.3f\n", curves.size(),
              fit.n_opt.exponent, fit.d_opt.exponent);
  std::printf("| C (training FLOPs) | best run | params | tokens | loss |\n|---:|---|---:|---:|---:|\n");
  for (const auto& e : fit.envelope)
    std::printf("| %.3g | %s | %.3g | %.3g | %.4f |\n", e.flops, e.run.c_str(), e.params, e.tokens, e.loss);
}

void run_fit(const FitFlags& f) {
  f.common.apply();
  FW_CHECK(f.runs.empty() != f.curves.empty(), "fit: give --runs FILE.csv (Approaches 3 and 2) or --curves RUN... "
           "(Approach 1), not both");
  if (!f.curves.empty()) return run_curves(f);
  FW_CHECK(f.svg.empty() || f.isoflop, "fit: --svg draws the isoFLOP charts; add --isoflop");
  std::vector<RunRecord> runs = read_runs_csv(f.runs);
  const size_t read = runs.size();
  if (f.drop_highest > 0) runs = drop_highest_loss(runs, f.drop_highest);
  const FitResult r = fit_parametric(runs);
  const ScalingLaw& l = r.law;
  nlohmann::json j = {{"runs", runs.size()}, {"dropped", read - runs.size()}, {"approach3", law_json(l)},
                      {"objective", r.objective}, {"starts", r.starts}};
  nlohmann::json budgets = nlohmann::json::array();
  for (double C : kBudgets)
    budgets.push_back({{"flops", C}, {"n_opt", l.n_opt(C)}, {"d_opt", l.d_opt(C)}, {"tokens_per_param", l.d_opt(C) / l.n_opt(C)}});
  j["budgets"] = budgets;
  std::vector<ScalingLaw> boot;
  if (f.bootstrap > 0) boot = bootstrap_parametric(runs, r, f.bootstrap, f.seed);
  // 5th and 95th percentiles of each coefficient over the bootstrap fits
  auto interval = [&](auto get) {
    std::vector<double> v;
    for (const auto& b : boot) v.push_back(get(b));
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v[size_t(std::lround(q * double(v.size() - 1)))]; };
    return std::pair<double, double>{at(0.05), at(0.95)};
  };
  struct Coef {
    const char* name;
    double (*get)(const ScalingLaw&);
  };
  const Coef coefs[] = {{"E", [](const ScalingLaw& x) { return x.E; }},
                        {"A", [](const ScalingLaw& x) { return x.A; }},
                        {"B", [](const ScalingLaw& x) { return x.B; }},
                        {"alpha", [](const ScalingLaw& x) { return x.alpha; }},
                        {"beta", [](const ScalingLaw& x) { return x.beta; }},
                        {"a", [](const ScalingLaw& x) { return x.a(); }},
                        {"b", [](const ScalingLaw& x) { return x.b(); }}};
  if (!boot.empty()) {
    nlohmann::json ci;
    for (const auto& c : coefs) {
      auto [lo, hi] = interval(c.get);
      ci[c.name] = {lo, hi};
    }
    j["bootstrap"] = {{"samples", f.bootstrap}, {"interval_90", ci}};
  }
  IsoflopFit iso;
  if (f.isoflop) {
    iso = fit_isoflop(runs, f.isoflop_tolerance);
    nlohmann::json minima = nlohmann::json::array();
    for (const auto& m : iso.minima)
      minima.push_back({{"flops", m.flops}, {"runs", m.runs}, {"n_opt", m.n_opt}, {"d_opt", m.d_opt}, {"loss", m.loss}});
    j["approach2"] = {{"minima", minima}, {"a", iso.n_opt.exponent}, {"b", iso.d_opt.exponent},
                      {"n_coefficient", iso.n_opt.coefficient}, {"d_coefficient", iso.d_opt.coefficient}};
    if (!f.svg.empty()) {
      write_svg(f.svg + "_isoflop.svg", isoflop_chart({{"runs", iso}}));
      write_svg(f.svg + "_n_opt.svg", n_opt_chart({{"runs", iso}}));
    }
  }
  if (f.common.json) {
    print_json(j);
    return;
  }
  if (f.isoflop) {
    std::printf("Approach 2: %zu isoFLOP minima; N_opt ~ C^%.3f, D_opt ~ C^%.3f\n", iso.minima.size(),
                iso.n_opt.exponent, iso.d_opt.exponent);
    std::printf("| budget C | runs | N_opt | D_opt | loss at the minimum |\n|---:|---:|---:|---:|---:|\n");
    for (const auto& m : iso.minima)
      std::printf("| %.3g | %d | %.3g | %.3g | %.4f |\n", m.flops, m.runs, m.n_opt, m.d_opt, m.loss);
  }
  std::printf("Approach 3 on %zu runs (%zu dropped), Huber delta %.0e, %d L-BFGS starts; objective %.6g\n",
              runs.size(), read - runs.size(), kHuberDelta, r.starts, r.objective);
  std::printf("| coefficient | fit |%s\n|---|---:|%s\n", boot.empty() ? "" : " 90% bootstrap interval |",
              boot.empty() ? "" : "---|");
  for (const auto& c : coefs) {
    std::printf("| %s | %.4f |", c.name, c.get(l));
    if (!boot.empty()) {
      auto [lo, hi] = interval(c.get);
      std::printf(" %.4f - %.4f |", lo, hi);
    }
    std::printf("\n");
  }
  std::printf("| budget C (FLOPs) | N_opt | D_opt | tokens per parameter |\n|---|---:|---:|---:|\n");
  for (double C : kBudgets)
    std::printf("| %.0e | %.3g | %.3g | %.1f |\n", C, l.n_opt(C), l.d_opt(C), l.d_opt(C) / l.n_opt(C));
}
}  // namespace

void register_fit(CLI::App& app) {
  auto f = std::make_shared<FitFlags>();
  auto* sub = app.add_subcommand("fit", "fit Chinchilla scaling laws to training runs (Approaches 1, 2, 3)");
  sub->add_option("--runs", f->runs, "CSV with columns params,flops,loss[,tokens]");
  sub->add_option("--curves", f->curves, "Approach 1: run folders (config.json + metrics.jsonl) of several sizes");
  sub->add_option("--drop-highest", f->drop_highest, "drop the K highest-loss runs first");
  sub->add_option("--bootstrap", f->bootstrap, "refits on resampled runs: 90% intervals");
  sub->add_option("--seed", f->seed, "bootstrap seed");
  sub->add_flag("--isoflop", f->isoflop, "also Approach 2: the runs form groups at a few budgets");
  sub->add_option("--svg", f->svg, "with --isoflop: write PREFIX_isoflop.svg and PREFIX_n_opt.svg");
  sub->add_option("--isoflop-tolerance", f->isoflop_tolerance, "runs within this fraction of a budget form its group");
  f->common.add(sub);
  sub->callback([f]() { run_fit(*f); });
}

}  // namespace fw::cli
