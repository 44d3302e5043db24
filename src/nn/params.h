// How a model describes its parameters. Each component (the block's attention, each
// MLP kind, the Mixture-of-Depths router and predictor, the model's embedding, norm and
// head) lists its tensors once, in a for_each_*_param function, and everything else is
// derived from that list by a visitor: the flat buffer's layout and the checkpoint's
// names and order (Model::Model), the typed views into parameters, gradients and the
// bf16 copy (Model::views), the parameter count, and the FLOP count's weight terms
// (nn/flops.cpp). Adding a tensor is one line in one place.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace fw {

// How a tensor starts: N(0, 0.02); N(0, 0.02/√(2L)) for projections into the
// residual stream; ones (norm gains); zeros (biases).
enum class Init { normal, residual, ones, zeros };

// Which term of the FLOP count (nn/flops.h) a weight's products belong to.
enum class FlopTerm { none, attn_qkv, attn_out, mlp, router, predictor };

struct ParamSpec {
  std::string name;             // the checkpoint's tensor name
  std::vector<int64_t> shape;
  bool decay;                   // weight decay applies (matrices yes, gains and biases no)
  Init init;
  FlopTerm term = FlopTerm::none;
  // Multiply-accumulates per token the component's forward spends on this tensor
  // (Chinchilla's convention: one per weight a token meets; none for gains and
  // biases), in inference and in training (they differ for fff_leaf's soft mixture).
  double macs = 0, macs_train = 0;
  size_t numel() const {
    size_t n = 1;
    for (auto s : shape) n *= size_t(s);
    return n;
  }
};

// Called once per tensor, in the model's order. view: the component's pointer to the
// tensor; view16: its bf16 copy's pointer, for the matrices that have one (linear
// layers in bf16 mode), else null.
using ParamVisitor = std::function<void(const ParamSpec& spec, float*& view, const uint16_t** view16)>;

// A visitor that prefixes every name (a block's "blocks.3.").
inline ParamVisitor prefixed(const std::string& prefix, const ParamVisitor& f) {
  return [prefix, &f](const ParamSpec& s, float*& v, const uint16_t** v16) {
    ParamSpec named = s;
    named.name = prefix + s.name;
    f(named, v, v16);
  };
}

}  // namespace fw
