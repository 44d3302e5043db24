#include "scaling/plan.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "nn/flops.h"
#include "nn/model.h"

namespace fw {

ScalingLaw scaling_law(const std::string& name) {
  if (name == "epoch") return {1.8172, 482.01, 2085.43, 0.3478, 0.3658};
  if (name == "hoffmann") return {1.69, 406.4, 410.7, 0.34, 0.28};
  // Hoffmann et al.'s Approach 3 fit before rounding, kept in a comment after eq. 10 of
  // the arXiv TeX source as log-space offsets (E, A, B are their exponentials) and slopes.
  if (name == "hoffmann-tex")
    return {std::exp(0.5267228), std::exp(6.0073404), std::exp(6.0179186), 0.33917084, 0.2849083};
  std::ifstream in(name);
  FW_CHECK(in, "--law '", name, "': not 'epoch', 'hoffmann' or 'hoffmann-tex', and no such file");
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  try {
    const nlohmann::json a = nlohmann::json::parse(last).at("approach3");
    return {a.at("E").get<double>(), a.at("A").get<double>(), a.at("B").get<double>(), a.at("alpha").get<double>(),
            a.at("beta").get<double>()};
  } catch (const nlohmann::json::exception&) {
    throw Error(str(name, ": not the output of `flopwise fit --json` (no approach3 E, A, B, alpha, beta)"));
  }
}

std::vector<PlannedModel> plan_models(const ScalingLaw& law, double C, const ModelConfig& base, int64_t seq_len,
                                      int count) {
  FW_CHECK(C > 0 && std::isfinite(C), "plan: the budget must be a positive number of FLOPs");
  const double target = std::log(law.n_opt(C));
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
      shapes.push_back({std::abs(std::log(double(Model::count_params(m))) - target), m});
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

}  // namespace fw
