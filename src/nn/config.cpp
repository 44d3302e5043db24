#include "nn/config.h"

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
  FW_CHECK(head_dim() % 2 == 0, "config: model.d_model / model.n_heads = ", head_dim(),
           " must be even (rotary embeddings rotate pairs)");
}

}  // namespace fw
