// flopwise public API: sampling with a KV cache.
//   fw::LoadedModel lm = fw::load_model("runs/a");
//   fw::Generator gen(*lm.model, lm.config.model.max_seq_len);
//   fw::GenerateResult r = fw::generate(gen, prompt_ids, 100, {0.8, 0, 0.95}, /*seed=*/1);
// A batch of prompts, decoded side by side (one row of the generator each):
//   fw::Generator batch(*lm.model, lm.config.model.max_seq_len, 64, /*rows=*/prompts.size());
//   fw::BatchGenerateResult b = fw::generate_batch(batch, prompts, 100, {0.8, 0, 0.95}, 1);
#pragma once
#include "infer/generator.h"
#include "infer/sampling.h"
