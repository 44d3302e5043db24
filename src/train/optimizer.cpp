#include "train/optimizer.h"

#include <cmath>

#include "kernels/adamw.h"

namespace fw {

double AdamW::update(Model& model, double lr, double weight_decay, double grad_clip) {
  const double norm = std::sqrt(sum_squares(model.grads.data(), int64_t(model.grads.size())));
  const float scale = (grad_clip > 0 && norm > grad_clip) ? float(grad_clip / norm) : 1.0f;
  step++;
  for (const auto& t : model.tensors) {
    AdamWHyper h{float(lr), kBeta1, kBeta2, kEps, t.decay ? float(weight_decay) : 0.0f, step, scale};
    adamw_update(model.params.data() + t.offset, model.grads.data() + t.offset, m.data() + t.offset,
                 v.data() + t.offset, int64_t(t.numel()), h);
  }
  return norm;
}

}  // namespace fw
