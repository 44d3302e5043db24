// flopwise public API: training. Configs (JSON sections, --set overrides), the
// training loop with checkpoints and exact resume, evaluation, AdamW.
//   fw::Config cfg; fw::apply_set(cfg, "train.steps=100");
//   fw::TrainOptions opt{.data_dir = "data", .run_dir = "runs/a"};
//   fw::TrainSummary s = fw::run_training(cfg, opt);
// Data-parallel across MPI ranks (the program started by mpirun): opt.comm = &fw::world()
// (fw::finish_world() at the end); opt.zero1 shards the AdamW moments.
#pragma once
#include "parallel/comm.h"
#include "train/checkpoint.h"
#include "config/config.h"
#include "train/evaluate.h"
#include "train/optimizer.h"
#include "train/trainer.h"
