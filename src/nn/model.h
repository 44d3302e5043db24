// The decoder-only transformer: token embedding, n_layers pre-norm blocks, final
// RMSNorm, output head (tied to the embedding by default), cross-entropy.
// Parameters and gradients each live in one flat buffer with named views, in the
// order of `tensors` (which is also the checkpoint's order); every component
// describes its tensors once (nn/params.h).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/rng.h"
#include "nn/block.h"
#include "nn/routed_block.h"
#include "nn/config.h"
#include "nn/params.h"

namespace fw {

// A tensor of the flat buffer: its description and where it lies.
struct ParamTensor : ParamSpec {
  size_t offset;  // into the flat buffer, in floats
};

// Typed views of one flat buffer (parameters or gradients).
struct ModelWeights {
  float* embedding = nullptr;          // (V, C)
  std::vector<BlockWeights> blocks;     // per layer
  std::vector<RouterWeights> routers;   // per layer (empty views in dense blocks)
  float* final_norm = nullptr;         // (C)
  float* lm_head = nullptr;            // (V, C): == embedding when tied
  const uint16_t* lm_head16 = nullptr;  // its bf16 copy in bf16 mode
  const PackedMatrix* lm_head_packed = nullptr;  // decoding's packed copy
  float* classifier = nullptr;         // (labels, C) model.head = sequence or tagging
  float* classifier_bias = nullptr;    // (labels)
  const uint16_t* classifier16 = nullptr;
};

class Model {
 public:
  explicit Model(const ModelConfig& cfg);  // validates cfg; parameters zeroed
  ModelConfig cfg;
  std::vector<ParamTensor> tensors;
  Buffer params;  // (num_params)
  Buffer grads;   // (num_params) once enable_grads() was called
  std::vector<uint16_t> params16;  // (num_params) bf16 copy, in bf16 mode
  ModelWeights w, dw;
  CausalCalibration calibration;  // sampling's routing thresholds, when calibrated
  // Per layer, the thresholds sampling's routing uses: the calibrated ones when asked
  // for and present, else the trained rule's 0.
  std::vector<float> causal_thresholds(bool calibrated) const {
    if (calibrated && !calibration.empty()) return calibration.threshold;
    return std::vector<float>(size_t(cfg.n_layers), 0.0f);
  }

  size_t num_params() const { return params.size(); }
  size_t num_embedding_params() const;  // embedding (+ untied head)
  void init_weights(uint64_t seed);
  void enable_grads();
  // bf16 mode: matrix products take bf16 copies of the weights (fp32 accumulation).
  // sync_bf16() refreshes the copies after the fp32 weights change.
  void disable_bf16();  // back to fp32: the bf16 copies dropped
  void enable_bf16();
  void set_matmul_bf16(bool on) {  // train.matmul_bf16: bf16 mode when on, fp32 otherwise
    if (on) enable_bf16();
    else disable_bf16();
  }
  void sync_bf16();
  bool bf16_enabled() const { return !params16.empty(); }
  static size_t count_params(const ModelConfig& cfg);
  static size_t count_embedding_params(const ModelConfig& cfg);  // embedding (+ untied head)
  // Every parameter of a model of this config, in checkpoint order, with its view in v
  // (the single description the constructor, views and counts are made from).
  static void for_each_param(const ModelConfig& cfg, ModelWeights& v, const ParamVisitor& f);

 private:
  ModelWeights views(float* base, const uint16_t* base16) const;
};

// Everything one forward/backward on a (B, T) batch needs, carved from one arena
// sized at construction. No allocation happens inside a step.
class Activations {
 public:
  Activations(const Model& m, int64_t B, int64_t T, bool backward);
  // Bytes an Activations of this shape would take (for the memory estimate).
  static size_t bytes(const ModelConfig& cfg, int64_t B, int64_t T, bool backward);
  // Inference on shorter rows: the next forwards take (B, T) batches, T no longer than
  // the length these activations were made for, in the first B·T rows of every buffer
  // (so one allocation serves batches of any length; making activations zeroes them,
  // which at 64 × 100 tokens of a d=256, 4-layer model costs more than the forward).
  // Routed blocks then select k(T) ≤ k(allocated) tokens per row, in the front of
  // buffers sized for the longest rows.
  void use_length(int64_t T);

  BlockDims dims;
  bool with_backward;
  int64_t allocated_T;            // the length the buffers were made for (dims.T ≤ it)
  std::vector<float*> res;        // n_layers+1 residual streams (B,T,C)
  std::vector<BlockActs> blocks;  // per dense layer
  std::vector<RoutedActs> routed; // per routed (MoD) layer, by layer index
  BlockScratch scratch;
  float* lnf;     // (B,T,C)   final RMSNorm output
  float* rstdf;   // (B,T)
  float* logits;  // (B,T,V)   logits → probabilities → dlogits (encoder: the chosen rows first;
                  //           a classifier's are (B,T,labels))
  float* losses;  // (B,T)
  float* dres;    // (B,T,C)   residual gradient (backward)
  std::vector<int32_t> pos;  // (B,T) positions 0..T-1
  RopeTable rope;
  // Encoders: real tokens per row (B; T unless the caller pads), which attention
  // reads through dims.mask; and sparse prediction: the head runs only at the n
  // tokens with a target (chosen, in order), on their gathered final-norm rows.
  std::vector<int32_t> lengths;
  std::vector<int32_t> chosen, chosen_targets;  // (n) token index in (B·T), its target
  float* chosen_lnf = nullptr;  // (n,C) ≤ (B,T,C)
  float* dchosen = nullptr;     // (n,C) backward

 private:
  Activations() = default;  // for bytes(): lays out without allocating
  void layout(const ModelConfig& cfg, const std::function<void(float*&, size_t)>& f);
  Arena arena_;
};

struct ForwardLoss {
  float loss = 0;       // mean cross-entropy over the targets (0 without targets)
  int64_t scored = 0;   // targets the loss is over: B·T, or an encoder's chosen tokens
  int64_t correct = 0;  // encoders, inference: chosen tokens whose most likely id is the target
  double aux_loss = 0;  // the weighted auxiliary losses (MoD's BCEs, fff_leaf's hardening)
  double objective() const { return loss + aux_loss; }  // what training minimises
};

// tokens (B,T) → a.logits; with targets (B,T) also the losses (targets may be null:
// logits only). A training mode needs Activations made with backward = true.
// Encoders score only the tokens whose target is ≥ 0 (masked-LM: the chosen ones,
// batching/masking.h), and without targets give logits at every token (a fine-tuned
// encoder's: its classifier's).
ForwardLoss model_forward(Model& m, Activations& a, const int32_t* tokens, const int32_t* targets,
                          const ForwardMode& mode);

// Accumulates (+=) into m.grads the gradient of scale · objective. Needs the training
// forward of the same batch just before.
void model_backward(Model& m, Activations& a, const int32_t* tokens, const int32_t* targets,
                    float scale);

}  // namespace fw
