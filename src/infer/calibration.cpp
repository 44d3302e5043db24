#include "infer/calibration.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "infer/causal_eval.h"

namespace fw {

float capacity_threshold(std::vector<float>& scores, double capacity) {
  const int64_t n = int64_t(scores.size());
  FW_CHECK(n > 0, "calibration: no tokens to calibrate on");
  FW_CHECK(capacity > 0 && capacity <= 1, "calibration: capacity ", capacity, " outside (0, 1]");
  const int64_t above = std::clamp<int64_t>(int64_t(std::llround(capacity * double(n))), 0, n);
  std::sort(scores.begin(), scores.end());
  if (above == n) return std::nextafter(scores[0], -INFINITY);
  if (above == 0) return scores[size_t(n - 1)];
  const float lo = scores[size_t(n - above - 1)], hi = scores[size_t(n - above)];
  const float mid = lo + (hi - lo) / 2;
  return hi > mid ? mid : lo;  // adjacent floats: the midpoint may round onto hi
}

CausalCalibration calibrate_causal(const Model& model, TokenLoader& data, int64_t tokens, int64_t T) {
  const ModelConfig& c = model.cfg;
  FW_CHECK(c.mod.enabled, "calibration: the model has no routed blocks (mod.enabled = false)");
  CausalCalibration cal;
  cal.threshold.assign(size_t(c.n_layers), 0.0f);
  for (int64_t l = 0; l < c.n_layers; l++) {
    if (!c.mod.routed(l)) continue;
    // blocks before l calibrated, l and later at 0: they do not change l's inputs
    std::vector<float> scores;
    const CausalEvalResult r = evaluate_causal(model, data, tokens, T, cal.threshold,
                                               [&](const std::vector<int32_t>&, const Generator& g) {
      for (const auto& d : g.decisions(l)) scores.push_back(d.decider);
    });
    cal.tokens = r.tokens;
    // the share top-k processes in training: k of every T tokens
    cal.threshold[size_t(l)] = capacity_threshold(scores, double(c.mod.k(T)) / double(T));
  }
  return cal;
}

}  // namespace fw
