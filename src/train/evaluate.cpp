#include "train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "batching/masking.h"
#include "core/rng.h"

namespace fw {

// The seed of validation's masked-LM choices (with each window's index).
constexpr uint64_t kValidationMasking = 0x76616C6D61736B00ull;  // "valmask"

EvalResult evaluate(Model& model, Activations& acts, TokenLoader& data, int64_t tokens, int rank, int ranks,
                    double mask_rate) {
  const int64_t B = acts.dims.B, T = acts.dims.T, P = ranks;
  const int64_t windows = validation_windows(data, tokens, T, ranks);
  const int64_t per_rank = windows / P;
  std::vector<int32_t> in(static_cast<size_t>(B * T)), tgt(static_cast<size_t>(B * T));
  const ModConfig& mod = model.cfg.mod;
  const size_t L = size_t(model.cfg.n_layers);
  EvalResult r{0, per_rank * T, windows < tokens / T, std::vector<double>(L, 0.0),
               std::vector<double>(L, mod.router_bce() ? 0.0 : NAN), std::vector<double>(L, mod.predictor() ? 0.0 : NAN),
               {}};
  const MlpShape& mlp = acts.dims.mlp;
  r.tree_visits.assign(visit_counters(mlp) > 0 ? L : 0, std::vector<int64_t>(size_t(visit_counters(mlp)), 0));
  std::unique_ptr<Activations> tail;  // the last, shorter batch
  std::vector<int32_t> masked(model.cfg.encoder() ? in.size() : 0);
  double sum = 0, accuracy = 0;
  for (int64_t done = 0; done < per_rank;) {
    const int64_t rows = std::min(B, per_rank - done);  // this batch's rows on every rank
    if (rows < B && !tail) tail = std::make_unique<Activations>(model, rows, T, false);
    Activations& a = rows == B ? acts : *tail;
    data.set_position((done * P + rank * rows) * T);  // this rank's rows of the whole job's batch
    data.next_batch(in.data(), tgt.data(), rows, T);
    const int32_t* inputs = in.data();
    if (model.cfg.encoder()) {  // each window masked by its index: the same whatever the batching
      for (int64_t i = 0; i < rows; i++) {
        const uint64_t window = uint64_t(done * P + rank * rows + i);
        mask_for_mlm(masked.data() + i * T, tgt.data() + i * T, in.data() + i * T, 1, T, mask_rate, model.cfg,
                     hash64(kValidationMasking ^ hash64(window)));
      }
      inputs = masked.data();
    }
    const double w = double(rows) / double(per_rank);  // the batch's share of this rank's windows
    const ForwardLoss f = model_forward(model, a, inputs, tgt.data(), ForwardMode{});  // inference
    sum += w * f.loss;
    accuracy += w * double(f.correct) / double(f.scored);
    for (size_t l = 0; l < r.tree_visits.size(); l++) {  // routed blocks ran their MLP on rows·k tokens
      const bool routed = mod.routed(int64_t(l));
      const BlockActs& b = routed ? a.routed[l].inner : a.blocks[l];
      count_tree_visits(mlp, b.mlp, routed ? rows * mod.k(T) : rows * T, r.tree_visits[l].data());
    }
    for (int64_t l = 0; l < model.cfg.n_layers; l++)
      if (mod.routed(l)) {
        const RoutedActs& ra = a.routed[size_t(l)];
        const size_t i = size_t(l);
        r.causal_accuracy[i] += w * (mod.decides_by_predictor() ? ra.predictor_accuracy : ra.router_accuracy);
        r.router_accuracy[i] += w * ra.router_accuracy;
        r.predictor_accuracy[i] += w * ra.predictor_accuracy;
      }
    done += rows;
  }
  r.loss = sum;
  if (model.cfg.encoder()) r.accuracy = accuracy;
  return r;
}

}  // namespace fw
