#include "nn/config.h"

#include <cmath>

#include "core/error.h"

namespace fw {

void ModelConfig::validate() const {
  auto in_range = [](const char* field, int64_t v, int64_t lo, int64_t hi) {
    FW_CHECK(v >= lo && v <= hi, "config: model.", field, " = ", v, " must be in [", lo, ", ", hi,
             "]");
  };
  in_range("vocab_size", vocab_size, 2, int64_t(1) << 24);
  in_range("d_model", d_model, 2, 65536);
  in_range("n_layers", n_layers, 1, 1024);
  in_range("n_heads", n_heads, 1, 4096);
  in_range("max_seq_len", max_seq_len, 1, 1 << 20);
  in_range("mlp_hidden", mlp_hidden, 0, 1 << 20);
  FW_CHECK(d_model % n_heads == 0, "config: model.n_heads = ", n_heads,
           " does not divide model.d_model = ", d_model);
  if (mod.enabled) {
    FW_CHECK(mod.capacity > 0 && mod.capacity <= 1, "config: mod.capacity = ", mod.capacity,
             " must be in (0, 1]");
    FW_CHECK(mod.every >= 1, "config: mod.every = ", mod.every, " must be >= 1 (1: every block routed)");
    FW_CHECK(mod.every <= n_layers, "config: mod.every = ", mod.every, " routes no block of ", n_layers);
    FW_CHECK(mod.gate == "raw" || mod.gate == "sigmoid", "config: mod.gate = '", mod.gate,
             "' must be 'raw' or 'sigmoid'");
    FW_CHECK(mod.causal == "router_bce" || mod.causal == "predictor" || mod.causal == "both",
             "config: mod.causal = '", mod.causal, "' must be 'router_bce', 'predictor' or 'both'");
    FW_CHECK(mod.bce_weight >= 0, "config: mod.bce_weight = ", mod.bce_weight, " must be >= 0");
    FW_CHECK(mod.predictor_weight >= 0, "config: mod.predictor_weight = ", mod.predictor_weight, " must be >= 0");
    FW_CHECK(mod.predictor_hidden >= 0, "config: mod.predictor_hidden = ", mod.predictor_hidden, " must be >= 0");
  }
  FW_CHECK(head_dim() % 2 == 0, "config: model.d_model / model.n_heads = ", head_dim(),
           " must be even (rotary embeddings rotate pairs)");
}

int64_t ModConfig::k(int64_t T) const {
  return std::max<int64_t>(1, std::llround(capacity * double(T)));
}

}  // namespace fw
