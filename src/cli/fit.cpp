// flopwise fit: scaling-law fits to a CSV of training runs (Hoffmann et al. 2022). Approach 3,
// the parametric L(N, D) = E + A/N^α + B/D^β, with bootstrap intervals; with
// --isoflop also Approach 2 (parabolas per budget, power laws through their minima);
// with --curves, Approach 1 from the training curves of run folders.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "scaling/charts.h"
#include "scaling/curve_fit.h"
#include "scaling/isoflop_fit.h"
#include "scaling/law_report.h"
#include "scaling/parametric_fit.h"

namespace fw::cli {

namespace {
struct FitFlags {
  std::string runs, params = "total", variant;
  std::vector<std::string> curves;
  int drop_highest = 0, bootstrap = 0;
  bool isoflop = false;
  double isoflop_tolerance = 0.1;
  std::string svg;
  uint64_t seed = 0;
  CommonFlags common;
};

nlohmann::json curves_json(const CurveFit& fit) {
  nlohmann::json env = nlohmann::json::array();
  for (const auto& e : fit.envelope)
    env.push_back({{"flops", e.flops}, {"params", e.params}, {"tokens", e.tokens}, {"loss", e.loss}, {"run", e.run}});
  return {{"approach1", {{"a", fit.n_opt.exponent}, {"b", fit.d_opt.exponent}, {"envelope", env}}}};
}

void print_curves(const CurveFit& fit, size_t curves) {
  std::printf("Approach 1 over %zu training curves: N_opt ~ C^%.3f, D_opt ~ C^%.3f\n", curves,
              fit.n_opt.exponent, fit.d_opt.exponent);
  std::printf("| C (training FLOPs) | best run | params | tokens | loss |\n|---:|---|---:|---:|---:|\n");
  for (const auto& e : fit.envelope)
    std::printf("| %.3g | %s | %.3g | %.3g | %.4f |\n", e.flops, e.run.c_str(), e.params, e.tokens, e.loss);
}

// Approach 1: the envelope of the training curves and the power laws through it.
void run_curves(const FitFlags& f) {
  std::vector<TrainingCurve> curves;
  for (const auto& r : f.curves) curves.push_back(read_training_curve(r));
  const CurveFit fit = fit_curves(curves);
  if (f.common.json) print_json(curves_json(fit));
  else print_curves(fit, curves.size());
}

}  // namespace

void print_law_report(const nlohmann::json& j) {
  if (j.contains("approach2")) {
    const auto& a2 = j["approach2"];
    std::printf("Approach 2: %zu isoFLOP minima; N_opt ~ C^%.3f, D_opt ~ C^%.3f\n", a2["minima"].size(),
                a2["a"].get<double>(), a2["b"].get<double>());
    std::printf("| budget C | runs | N_opt | D_opt | loss at the minimum |\n|---:|---:|---:|---:|---:|\n");
    for (const auto& m : a2["minima"])
      std::printf("| %.3g | %d | %.3g | %.3g | %.4f |\n", m["flops"].get<double>(), m["runs"].get<int>(),
                  m["n_opt"].get<double>(), m["d_opt"].get<double>(), m["loss"].get<double>());
  }
  std::printf("Approach 3 on %zu runs, Huber delta %.0e, %d L-BFGS starts; objective %.6g. Grid fit (variable "
              "projection, least squares on loss): rms residual %.4g. Parameters: %s\n",
              j["runs"].get<size_t>(), kHuberDelta, j["starts"].get<int>(), j["objective"].get<double>(),
              j["grid"]["rms"].get<double>(), j["conventions"]["params"].get<std::string>().c_str());
  const bool boot = j.contains("bootstrap");
  std::printf("| coefficient | Approach 3 |%s grid fit |%s\n|---|---:|%s---:|%s\n", boot ? " 90% interval |" : "",
              boot ? " 90% interval |" : "", boot ? "---|" : "", boot ? "---|" : "");
  for (const char* c : {"E", "A", "B", "alpha", "beta", "a", "b"}) {
    std::printf("| %s | %.4f |", c, j["approach3"][c].get<double>());
    if (boot) std::printf(" %.4f - %.4f |", j["bootstrap"]["approach3"][c][0].get<double>(),
                          j["bootstrap"]["approach3"][c][1].get<double>());
    std::printf(" %.4f |", j["grid"][c].get<double>());
    if (boot) std::printf(" %.4f - %.4f |", j["bootstrap"]["grid"][c][0].get<double>(),
                          j["bootstrap"]["grid"][c][1].get<double>());
    std::printf("\n");
  }
  std::printf("| budget C (FLOPs) | N_opt | D_opt | tokens per parameter | grid fit: N_opt | tokens per parameter |\n"
              "|---|---:|---:|---:|---:|---:|\n");
  for (const auto& b : j["budgets"])
    std::printf("| %.0e | %.3g | %.3g | %.1f | %.3g | %.1f |\n", b["flops"].get<double>(), b["n_opt"].get<double>(),
                b["d_opt"].get<double>(), b["tokens_per_param"].get<double>(), b["grid_n_opt"].get<double>(),
                b["grid_tokens_per_param"].get<double>());
}

namespace {

// Approaches 3 and 2 on the runs CSV: the law report (scaling/law_report.h), which the
// table and the JSON both render; the charts as asked.
nlohmann::json fit_runs(const FitFlags& f) {
  FW_CHECK(f.svg.empty() || f.isoflop, "fit: --svg draws the isoFLOP charts; add --isoflop");
  FW_CHECK(f.params == "total" || f.params == "without-embeddings", "fit: --params '", f.params,
           "' must be total or without-embeddings");
  RunsSelection sel;
  sel.params_column = f.params == "total" ? "params" : "params_without_embeddings";
  sel.variant = f.variant;
  int diverged = 0;
  std::vector<RunRecord> runs = read_runs_csv(f.runs, sel, &diverged);
  const size_t read = runs.size();
  if (f.drop_highest > 0) runs = drop_highest_loss(runs, f.drop_highest);
  LawReportOptions lo;
  lo.bootstrap = f.bootstrap;
  lo.seed = f.seed;
  lo.isoflop = f.isoflop;
  lo.isoflop_tolerance = f.isoflop_tolerance;
  lo.params_column = sel.params_column;
  nlohmann::json j = law_report(runs, lo);
  j["dropped"] = read - runs.size();
  j["diverged"] = diverged;
  if (!f.variant.empty()) j["variant"] = f.variant;
  if (f.isoflop && !f.svg.empty()) {
    const IsoflopFit iso = fit_isoflop(runs, f.isoflop_tolerance);
    write_svg(f.svg + "_isoflop.svg", isoflop_chart({{"runs", iso}}));
    write_svg(f.svg + "_n_opt.svg", n_opt_chart({{"runs", iso}}));
  }
  return j;
}

void run_fit(const FitFlags& f) {
  f.common.apply();
  FW_CHECK(f.runs.empty() != f.curves.empty(), "fit: give --runs FILE.csv (Approaches 3 and 2) or --curves RUN... "
           "(Approach 1), not both");
  if (!f.curves.empty()) return run_curves(f);
  const nlohmann::json j = fit_runs(f);
  if (f.common.json) print_json(j);
  else print_law_report(j);
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
  sub->add_option("--params", f->params, "parameter count: total (default; embeddings included) or "
                  "without-embeddings (the runs CSV's params_without_embeddings column)");
  sub->add_option("--variant", f->variant, "only the rows whose variant column says this (e.g. dense or mod)");
  sub->add_flag("--isoflop", f->isoflop, "also Approach 2: the runs form groups at a few budgets");
  sub->add_option("--svg", f->svg, "with --isoflop: write PREFIX_isoflop.svg and PREFIX_n_opt.svg");
  sub->add_option("--isoflop-tolerance", f->isoflop_tolerance, "runs within this fraction of a budget form its group");
  f->common.add(sub);
  sub->callback([f]() { run_fit(*f); });
}

}  // namespace fw::cli
