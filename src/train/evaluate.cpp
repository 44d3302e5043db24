#include "train/evaluate.h"

#include <cmath>
#include <vector>

namespace fw {

EvalResult evaluate(Model& model, Activations& acts, TokenLoader& data, int64_t tokens, int rank, int ranks) {
  const int64_t B = acts.dims.B, T = acts.dims.T;
  const int64_t batches = std::max<int64_t>(1, tokens / (B * ranks * T));
  std::vector<int32_t> in(static_cast<size_t>(B * T)), tgt(static_cast<size_t>(B * T));
  double sum = 0;
  const ModConfig& mod = model.cfg.mod;
  const size_t L = size_t(model.cfg.n_layers);
  std::vector<double> acc(L, 0.0), racc(L, mod.router_bce() ? 0.0 : NAN), pacc(L, mod.predictor() ? 0.0 : NAN);
  const MlpShape& mlp = acts.dims.mlp;
  std::vector<std::vector<int64_t>> visits(visit_counters(mlp) > 0 ? L : 0,
                                           std::vector<int64_t>(size_t(visit_counters(mlp)), 0));
  for (int64_t i = 0; i < batches; i++) {
    data.set_position(0);
    data.advance((i * ranks + rank) * B * T);  // this rank's rows of whole-job batch i
    data.next_batch(in.data(), tgt.data(), B, T);
    sum += model_forward(model, acts, in.data(), tgt.data(), ForwardMode{}).loss;  // inference
    for (size_t l = 0; l < visits.size(); l++) {  // routed blocks ran their MLP on B·k tokens
      const bool routed = mod.routed(int64_t(l));
      const BlockActs& b = routed ? acts.routed[l].inner : acts.blocks[l];
      count_tree_visits(mlp, b.mlp, routed ? B * mod.k(T) : B * T, visits[l].data());
    }
    for (int64_t l = 0; l < model.cfg.n_layers; l++)
      if (mod.routed(l)) {
        const RoutedActs& r = acts.routed[size_t(l)];
        acc[size_t(l)] += (mod.decides_by_predictor() ? r.predictor_accuracy : r.router_accuracy) / double(batches);
        racc[size_t(l)] += r.router_accuracy / double(batches);
        pacc[size_t(l)] += r.predictor_accuracy / double(batches);
      }
  }
  return {sum / double(batches), batches * B * T, acc, racc, pacc, visits};
}

}  // namespace fw
