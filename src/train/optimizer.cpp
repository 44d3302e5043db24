#include "train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/adamw.h"

namespace fw {

void AdamW::init_shard(int64_t first, int64_t end) {
  lo = first;
  hi = end;
  m.resize(size_t(hi - lo));
  v.resize(size_t(hi - lo));
  step = 0;
}

void AdamW::keep_shard(int64_t first, int64_t end) {
  FW_CHECK(lo == 0 && first >= 0 && first <= end && end <= hi, "internal: shard [", first, ", ", end,
           ") of an optimizer over [", lo, ", ", hi, ")");
  const size_t n = size_t(end - first);
  Buffer m_part(n), v_part(n);
  std::memcpy(m_part.data(), m.data() + first, n * sizeof(float));
  std::memcpy(v_part.data(), v.data() + first, n * sizeof(float));
  m = std::move(m_part);
  v = std::move(v_part);
  lo = first;
  hi = end;
}

double AdamW::update(Model& model, const TrainConfig& t, double lr) {
  FW_CHECK(lo == 0 && hi == int64_t(model.num_params()), "internal: AdamW::update on a shard");
  const double norm = std::sqrt(sum_squares(model.grads.data(), int64_t(model.grads.size())));
  apply(model, t, lr, norm);
  return norm;
}

void AdamW::apply(Model& model, const TrainConfig& t, double lr, double grad_norm) {
  const float scale = (t.grad_clip > 0 && grad_norm > t.grad_clip) ? float(t.grad_clip / grad_norm) : 1.0f;
  step++;
  for (const auto& w : model.tensors) {  // each tensor's part inside [lo, hi)
    const int64_t first = std::max(lo, int64_t(w.offset)), end = std::min(hi, int64_t(w.offset + w.numel()));
    if (first >= end) continue;
    AdamWHyper h{float(lr), float(t.beta1), float(t.beta2), kEps, w.decay ? float(t.weight_decay) : 0.0f, step, scale};
    adamw_update(model.params.data() + first, model.grads.data() + first, m.data() + (first - lo),
                 v.data() + (first - lo), end - first, h);
  }
}

}  // namespace fw
