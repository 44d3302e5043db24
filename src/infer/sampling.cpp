#include "infer/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/cross_entropy.h"

namespace fw {

int32_t sample_token(float* logits, int64_t V, const SamplingParams& p, Rng& rng) {
  if (p.temperature <= 0) return int32_t(std::max_element(logits, logits + V) - logits);
  for (int64_t i = 0; i < V; i++) logits[i] = float(logits[i] / p.temperature);
  softmax_rows(logits, 1, V);
  // candidates by descending probability (ties by id, so the order is deterministic)
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  size_t keep = size_t(V);
  if (p.top_k > 0) keep = std::min(keep, size_t(p.top_k));
  if (p.top_p < 1.0) {
    double mass = 0;
    for (size_t i = 0; i < keep; i++) {
      mass += logits[order[i]];
      if (mass >= p.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double total = 0;
  for (size_t i = 0; i < keep; i++) total += logits[order[i]];
  double u = double(rng.uniform()) * total, acc = 0;
  for (size_t i = 0; i < keep; i++) {
    acc += logits[order[i]];
    if (u < acc) return order[i];
  }
  return order[keep - 1];
}

}  // namespace fw
