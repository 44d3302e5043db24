// flopwise public API: the model. A decoder-only transformer with flat parameter
// and gradient buffers, hand-written forward/backward, and exact FLOP accounting.
//   fw::Model m(cfg); m.init_weights(seed);
//   fw::Activations a(m, B, T, /*backward=*/true);
//   fw::ForwardLoss f = fw::model_forward(m, a, tokens, targets, fw::ForwardMode{.train = true, .seed = 1});
//   m.enable_grads(); fw::model_backward(m, a, tokens, targets, 1.0f);  // ∂ f.objective()
#pragma once
#include "nn/config.h"
#include "nn/flops.h"
#include "nn/model.h"
