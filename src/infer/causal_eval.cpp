#include "infer/causal_eval.h"

#include <algorithm>
#include <cmath>

namespace fw {

CausalEvalResult evaluate_causal(
    const Model& model, TokenLoader& data, int64_t tokens, int64_t T, const std::vector<float>& thresholds,
    const std::function<void(const std::vector<int32_t>&, const Generator&)>& on_sequence) {
  const int64_t V = model.cfg.vocab_size, L = model.cfg.n_layers;
  const int64_t sequences = validation_windows(data, tokens, T);  // the windows evaluate() reads
  Generator gen(model, T, T);  // one chunk per sequence
  gen.set_thresholds(thresholds);
  std::vector<int32_t> in(static_cast<size_t>(T)), tgt(static_cast<size_t>(T));
  std::vector<double> processed(size_t(L), 0.0);
  double sum = 0;
  data.set_position(0);
  for (int64_t s = 0; s < sequences; s++) {
    data.next_batch(in.data(), tgt.data(), 1, T);
    gen.reset();
    gen.feed(in.data(), T);
    for (int64_t t = 0; t < T; t++) {  // cross-entropy from the logits, in double
      const float* lg = gen.logits(t);
      const float mx = *std::max_element(lg, lg + V);
      double z = 0;
      for (int64_t v = 0; v < V; v++) z += std::exp(double(lg[v] - mx));
      sum += std::log(z) - double(lg[tgt[size_t(t)]] - mx);
    }
    for (int64_t l = 0; l < L; l++) processed[size_t(l)] += double(gen.cache_length(l)) / double(T);
    if (on_sequence) on_sequence(in, gen);
  }
  for (auto& p : processed) p /= double(sequences);
  return {sum / double(sequences * T), sequences * T, processed};
}

}  // namespace fw
