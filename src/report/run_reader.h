// A run folder as the report reads it: the checkpoint's config, tokenizer, step and
// data folder, metrics.jsonl row by row, and the demo's summary.json when present.
// Anything missing or malformed is an Error naming the file (and line).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/model.h"
#include "config/config.h"
#include "formats/run_folder.h"

namespace fw {

struct RunInfo {
  std::string dir, name;  // name: the folder's last component
  Config config;
  std::unique_ptr<Model> model;  // its weights, for the routing and tree analyses (the report drops them after)
  std::string tokenizer, data_dir;
  int64_t step = 0;
  std::vector<MetricsRow> metrics;
  nlohmann::json summary;  // RUN/summary.json (written by `flopwise demo`), or null
};

// Checks dir is a run (model.safetensors, metrics.jsonl; state.safetensors names its
// data) and reads it, weights included.
RunInfo read_run(const std::string& dir);

// Whether dir is an isoFLOP sweep folder (holds a sweep's runs.csv).
bool is_sweep_dir(const std::string& dir);

}  // namespace fw
