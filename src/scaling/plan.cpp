#include "scaling/plan.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "nn/flops.h"
#include "nn/model.h"
#include "scaling/law_report.h"

namespace fw {

ScalingLaw scaling_law(const std::string& name) {
  if (name == "epoch") return {1.8172, 482.01, 2085.43, 0.3478, 0.3658};
  if (name == "hoffmann") return {1.69, 406.4, 410.7, 0.34, 0.28};
  // Hoffmann et al.'s Approach 3 fit before rounding, kept in a comment after eq. 10 of
  // the arXiv TeX source as log-space offsets (E, A, B are their exponentials) and slopes.
  if (name == "hoffmann-tex")
    return {std::exp(0.5267228), std::exp(6.0073404), std::exp(6.0179186), 0.33917084, 0.2849083};
  const auto laws = scaling_laws(name);
  const auto it = laws.find("dense");
  FW_CHECK(it != laws.end(), name, ": holds no dense law");
  return it->second;
}

std::map<std::string, ScalingLaw> scaling_laws(const std::string& name, const std::string& fit) {
  if (name == "epoch" || name == "hoffmann" || name == "hoffmann-tex") return {{"dense", scaling_law(name)}};
  FW_CHECK(fit == "approach3" || fit == "grid", "--fit '", fit, "' must be approach3 or grid");
  std::ifstream in(name);
  FW_CHECK(in, "--law '", name, "': not 'epoch', 'hoffmann' or 'hoffmann-tex', and no such file");
  // the whole file (a sweep's fit.json), else its last line (`fit --json > FILE` after
  // other output)
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded()) {
    std::string line, last;
    while (std::getline(text, line))
      if (!line.empty()) last = line;
    j = nlohmann::json::parse(last, nullptr, false);
  }
  FW_CHECK(!j.is_discarded() && j.is_object(), name,
           ": not the output of `flopwise fit --json` or a sweep's fit.json (not JSON)");
  std::map<std::string, ScalingLaw> laws;
  if (j.contains("variants") && j["variants"].is_object()) {
    for (const auto& [variant, report] : j["variants"].items())
      if (report.contains(fit)) laws[variant] = law_from_report(report, fit, name + " (" + variant + ")");
    FW_CHECK(!laws.empty(), name, ": its variants hold no ", fit, " law");
    return laws;
  }
  FW_CHECK(j.contains("approach3"), name, ": not the output of `flopwise fit --json` (no approach3 E, A, B, alpha, beta)");
  const std::string variant = j.value("variant", std::string("dense"));
  laws[variant] = law_from_report(j, fit, name);
  return laws;
}

std::vector<PlannedModel> plan_models(const ScalingLaw& law, double C, const ModelConfig& base, int64_t seq_len,
                                      int count) {
  FW_CHECK(C > 0 && std::isfinite(C), "plan: the budget must be a positive number of FLOPs");
  std::vector<std::pair<double, ModelConfig>> shapes;  // (distance, shape)
  for (int64_t L = 1; L <= 96; L++)
    for (int64_t d = 64; d <= 16384; d += 64) {
      if (d < 16 * L || d > 256 * L) continue;
      ModelConfig m = base;
      m.n_layers = L;
      m.d_model = d;
      m.n_heads = d / 64;
      m.mlp_hidden = 0;
      m.max_seq_len = std::max(base.max_seq_len, seq_len);
      if (m.mod.enabled && m.mod.every > L) continue;
      const double tokens = C / count_flops(m, seq_len).train_per_token();
      shapes.push_back({law.loss(double(Model::count_params(m)), tokens), m});
    }
  FW_CHECK(!shapes.empty(), "plan: no model shape fits");
  std::stable_sort(shapes.begin(), shapes.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<PlannedModel> out;
  for (int i = 0; i < count && i < int(shapes.size()); i++) {
    const ModelConfig& m = shapes[size_t(i)].second;
    PlannedModel p{m, double(Model::count_params(m)), count_flops(m, seq_len).train_per_token(), 0, 0};
    p.tokens = C / p.train_flops_per_token;
    p.predicted_loss = law.loss(p.params, p.tokens);
    out.push_back(p);
  }
  return out;
}

nlohmann::json plan_report(const std::string& law_name, const std::string& fit, const std::string& variant, double C,
                           const ModelConfig& base, const TrainConfig& train, double rate) {
  FW_CHECK(variant.empty() || variant == "dense" || variant == "mod", "plan: variant '", variant,
           "' must be dense or mod");
  FW_CHECK(C > 0 && std::isfinite(C), "plan: the budget must be a positive number of FLOPs, not ", C);
  const std::map<std::string, ScalingLaw> laws = scaling_laws(law_name, fit);
  FW_CHECK(variant.empty() || laws.count(variant), "plan: --law ", law_name, " holds no ", variant,
           " law (it has ", laws.begin()->first, laws.size() > 1 ? " and more" : "", ")");
  const int64_t T = train.seq_len, tokens_per_step = train.batch_size * T;
  // The variants planned: the one asked for, else dense and MoD. A variant without a law
  // of its own (MoD under a published law) gets dense's law for choosing shapes and no
  // predicted loss: what it reaches is for a MoD sweep to measure.
  const std::vector<std::string> planned =
      variant.empty() ? std::vector<std::string>{"dense", "mod"} : std::vector<std::string>{variant};
  nlohmann::json variants = nlohmann::json::object(), law_of = nlohmann::json::object();
  for (const std::string& v : planned) {
    const bool own = laws.count(v) > 0;
    const ScalingLaw& law = own ? laws.at(v) : laws.count("dense") ? laws.at("dense") : laws.begin()->second;
    ModelConfig m = base;
    m.mod.enabled = v == "mod";
    nlohmann::json rows = nlohmann::json::array();
    for (const PlannedModel& p : plan_models(law, C, m, T))
      rows.push_back({{"n_layers", p.model.n_layers}, {"d_model", p.model.d_model}, {"n_heads", p.model.n_heads},
                      {"params", p.params}, {"train_flops_per_token", p.train_flops_per_token}, {"tokens", p.tokens},
                      {"steps", std::llround(p.tokens / double(tokens_per_step))},
                      {"predicted_loss", own ? nlohmann::json(p.predicted_loss) : nlohmann::json(nullptr)}});
    variants[v] = rows;
    if (own)
      law_of[v] = {{"E", law.E}, {"A", law.A}, {"B", law.B}, {"alpha", law.alpha}, {"beta", law.beta},
                   {"n_opt", law.n_opt(C)}, {"d_opt", law.d_opt(C)},
                   {"predicted_loss", law.loss(law.n_opt(C), law.d_opt(C))}};
  }
  // the first law planned (dense when there is one) also at the top level, as before
  const std::string main = law_of.contains("dense") ? "dense" : law_of.begin().key();
  const auto& L = law_of[main];
  return {{"flops", C},
          {"law", {{"E", L["E"]}, {"A", L["A"]}, {"B", L["B"]}, {"alpha", L["alpha"]}, {"beta", L["beta"]}}},
          {"law_variant", main},
          {"laws", law_of},
          {"n_opt", L["n_opt"]},
          {"d_opt", L["d_opt"]},
          {"predicted_loss", L["predicted_loss"]},
          {"training_flops_per_s", rate},
          {"hours", C / rate / 3600},
          {"variants", variants}};
}

}  // namespace fw
