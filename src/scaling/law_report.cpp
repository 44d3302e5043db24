#include "scaling/law_report.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "scaling/grid_fit.h"

namespace fw {

nlohmann::json law_json(const ScalingLaw& l) {
  return {{"E", l.E}, {"A", l.A}, {"B", l.B}, {"alpha", l.alpha}, {"beta", l.beta}, {"a", l.a()}, {"b", l.b()}};
}

nlohmann::json approach2_json(const IsoflopFit& iso) {
  nlohmann::json minima = nlohmann::json::array();
  for (const auto& m : iso.minima)
    minima.push_back({{"flops", m.flops}, {"runs", m.runs}, {"n_opt", m.n_opt}, {"d_opt", m.d_opt}, {"loss", m.loss}});
  return {{"minima", minima}, {"a", iso.n_opt.exponent}, {"b", iso.d_opt.exponent},
          {"n_coefficient", iso.n_opt.coefficient}, {"d_coefficient", iso.d_opt.coefficient}};
}

// 5th and 95th percentiles of every coefficient over bootstrap laws.
static nlohmann::json intervals(const std::vector<ScalingLaw>& laws) {
  const std::pair<const char*, double (*)(const ScalingLaw&)> coefs[] = {
      {"E", [](const ScalingLaw& x) { return x.E; }},         {"A", [](const ScalingLaw& x) { return x.A; }},
      {"B", [](const ScalingLaw& x) { return x.B; }},         {"alpha", [](const ScalingLaw& x) { return x.alpha; }},
      {"beta", [](const ScalingLaw& x) { return x.beta; }},   {"a", [](const ScalingLaw& x) { return x.a(); }},
      {"b", [](const ScalingLaw& x) { return x.b(); }}};
  nlohmann::json ci = nlohmann::json::object();
  for (const auto& [name, get] : coefs) {
    std::vector<double> v;
    for (const auto& l : laws) v.push_back(get(l));
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v[size_t(std::lround(q * double(v.size() - 1)))]; };
    ci[name] = {at(0.05), at(0.95)};
  }
  return ci;
}

nlohmann::json law_report(const std::vector<RunRecord>& runs, const LawReportOptions& o) {
  const FitResult a3 = fit_parametric(runs);
  const GridFit grid = fit_grid(runs);
  nlohmann::json j = {
      {"runs", runs.size()},
      {"approach3", law_json(a3.law)},
      {"objective", a3.objective},
      {"starts", a3.starts},
      {"grid", law_json(grid.law)},
      {"conventions",
       {{"params", o.params_column == "params" ? "total parameters (embeddings included)"
                                                 : "parameters without embeddings"},
        {"params_column", o.params_column},
        {"flops", "the runs' flops column (flopwise sweeps: exact training FLOPs, output head and attention "
                  "included)"},
        {"tokens", "the runs' tokens column, else flops / (6 params)"}}}};
  j["grid"]["rms"] = grid.rms;
  if (o.bootstrap > 0) {
    j["bootstrap"] = {{"samples", o.bootstrap},
                      {"approach3", intervals(bootstrap_parametric(runs, a3, o.bootstrap, o.seed))},
                      {"grid", intervals(bootstrap_grid(runs, o.bootstrap, o.seed))}};
  }
  if (o.isoflop) j["approach2"] = approach2_json(fit_isoflop(runs, o.isoflop_tolerance));
  nlohmann::json budgets = nlohmann::json::array();
  for (double C : o.budgets)
    budgets.push_back({{"flops", C},
                       {"n_opt", a3.law.n_opt(C)},
                       {"d_opt", a3.law.d_opt(C)},
                       {"tokens_per_param", a3.law.d_opt(C) / a3.law.n_opt(C)},
                       {"grid_n_opt", grid.law.n_opt(C)},
                       {"grid_tokens_per_param", grid.law.d_opt(C) / grid.law.n_opt(C)}});
  j["budgets"] = budgets;
  return j;
}

ScalingLaw law_from_report(const nlohmann::json& j, const std::string& fit, const std::string& origin) {
  FW_CHECK(fit == "approach3" || fit == "grid", "--fit '", fit, "' must be approach3 or grid");
  try {
    const nlohmann::json& a = j.at(fit);
    return {a.at("E").get<double>(), a.at("A").get<double>(), a.at("B").get<double>(), a.at("alpha").get<double>(),
            a.at("beta").get<double>()};
  } catch (const nlohmann::json::exception&) {
    throw Error(str(origin, ": no ", fit, " law (E, A, B, alpha, beta) in it"));
  }
}

}  // namespace fw
