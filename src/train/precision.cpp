#include "train/precision.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/timer.h"

namespace fw {

std::string PrecisionChoice::summary() const {
  return str("forward + backward of a micro-batch takes ", fp32_ms, " ms in fp32, ", bf16_ms, " ms in bf16; training in ",
             bf16 ? "bf16" : "fp32");
}

PrecisionChoice measure_matmul_precision(Model& model, Activations& acts, int64_t B, int64_t T) {
  const int64_t V = model.cfg.vocab_size;
  std::vector<int32_t> in(static_cast<size_t>(B * T)), tgt(in.size());
  for (size_t i = 0; i < in.size(); i++) {  // fixed tokens: the run's data and random stream stay untouched
    in[i] = int32_t((i * 7919) % size_t(V));
    tgt[i] = int32_t((i * 104729 + 1) % size_t(V));
  }
  auto best_ms = [&](bool bf16) {
    model.set_matmul_bf16(bf16);
    double best = 1e30;
    for (int r = 0; r < 4; r++) {  // the first pass untimed: scratch buffers, oneDNN's kernels
      const double t0 = now_seconds();
      model_forward(model, acts, in.data(), tgt.data(), ForwardMode{true, 0});
      model_backward(model, acts, in.data(), tgt.data(), 1.0f);
      if (r > 0) best = std::min(best, now_seconds() - t0);
    }
    return 1e3 * best;
  };
  PrecisionChoice c;
  c.fp32_ms = best_ms(false);
  c.bf16_ms = best_ms(true);
  c.bf16 = c.bf16_ms < c.fp32_ms;
  model.set_matmul_bf16(c.bf16);
  model.grads.zero();
  return c;
}

}  // namespace fw
