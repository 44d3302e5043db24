// Checkpoints of a run folder:
//   RUN/model.safetensors  weights; __metadata__ holds the config (JSON), the
//                          tokenizer and the step, so the file describes itself.
//   RUN/state.safetensors  AdamW moments; __metadata__ holds step, data position
//                          and RNG state: what resume needs for the same trajectory.
// A checkpoint is written in two phases so that a crash at any moment leaves one that
// resumes exactly: both temporaries are written and fsynced first (a crash here leaves
// the previous pair untouched), then the state is renamed into place (the commit
// point), then the model. A crash between the two renames leaves the new state beside
// the old model and the new model complete in model.safetensors.tmp;
// finish_interrupted_checkpoint completes that rename when the run resumes.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "nn/model.h"
#include "config/config.h"
#include "train/optimizer.h"

namespace fw {

struct TrainingState {
  int64_t step = 0;      // optimizer steps done
  int64_t data_pos = 0;  // next token of the training stream
  std::array<uint64_t, 4> rng{};  // for stochastic parts of training (fff_leaf's transpositions)
  std::string data_dir;  // the data the run trains on (resume defaults to it)
  double train_seconds = 0;  // wall time of the training steps so far (evaluation excluded)
};

// RUN folder → RUN/model.safetensors; a file path is returned as is.
std::string model_file(const std::string& run_or_file);

void save_checkpoint(const std::string& run_dir, const Model& model, const Config& cfg,
                     const std::string& tokenizer, const AdamW& opt, const TrainingState& st);

// Before resuming: completes a checkpoint whose model rename a crash interrupted (the
// state at step s, model.safetensors older, model.safetensors.tmp a whole file at step
// s) and removes the checkpoint's leftover temporaries. Returns what it did, or "".
std::string finish_interrupted_checkpoint(const std::string& run_dir);

// Rewrites RUN/model.safetensors (atomically) with the model's weights and calibration;
// the optimizer state is untouched (same step), so the run still resumes.
void save_model(const std::string& run_or_file, const Model& model, const Config& cfg,
                const std::string& tokenizer, int64_t step);

struct LoadedModel {
  Config config;
  std::unique_ptr<Model> model;
  std::string tokenizer;
  int64_t step = 0;
};
// Validates config and every tensor's name, dtype and shape.
LoadedModel load_model(const std::string& run_or_file);

// Loads RUN/state.safetensors into opt and st; fails if its step differs from model_step.
void load_training_state(const std::string& run_dir, const Model& model, const Config& cfg,
                         int64_t model_step, AdamW& opt, TrainingState& st);

}  // namespace fw
