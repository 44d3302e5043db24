// flopwise public API: training. Configs (JSON sections, --set overrides), the
// training loop with checkpoints and exact resume, evaluation, AdamW.
//   fw::Config cfg; fw::apply_set(cfg, "train.steps=100");
//   fw::TrainOptions opt{.data_dir = "data", .run_dir = "runs/a"};
//   fw::TrainSummary s = fw::run_training(cfg, opt);
#pragma once
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/evaluate.h"
#include "train/optimizer.h"
#include "train/trainer.h"
