// train.matmul_bf16 = "auto": bf16 matrix products are not faster everywhere (oneDNN's
// bf16 matmul ran at half its fp32 rate on one Intel Xeon seen here), so training can
// measure both on its own model and take the faster.
#pragma once
#include <cstdint>
#include <string>

#include "nn/model.h"

namespace fw {

struct PrecisionChoice {
  bool bf16 = false;                   // the faster
  double fp32_ms = 0, bf16_ms = 0;     // best forward + backward of one micro-batch in each
  std::string summary() const;         // both times and the choice, for the log
};

// Times the forward and backward pass of a (B, T) micro-batch of fixed tokens in fp32
// and in bf16 (one untimed pass, then the best of three each), leaves the model in the
// faster mode and its gradients zero. The weights are not touched, so a run that
// measured and took bf16 trains exactly as one configured with bf16.
PrecisionChoice measure_matmul_precision(Model& model, Activations& acts, int64_t B, int64_t T);

}  // namespace fw
