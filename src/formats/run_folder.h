// A training run's folder: what its files are called, and the rows of metrics.jsonl,
// written by the trainer and read by the report and by Approach 1, all through here.
//   RUN/model.safetensors   weights; metadata: config, tokenizer, step (checkpoint.h)
//   RUN/state.safetensors   AdamW moments; metadata: step, data position, RNG, data folder
//   RUN/config.json         the config, for people
//   RUN/metrics.jsonl       one MetricsRow per logged step, as a JSON object
//   RUN/summary.json        `flopwise demo`'s table row and sample
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fw {

namespace run_file {
inline constexpr const char* model = "model.safetensors";
inline constexpr const char* state = "state.safetensors";
inline constexpr const char* config = "config.json";
inline constexpr const char* metrics = "metrics.jsonl";
inline constexpr const char* summary = "summary.json";
inline constexpr const char* task = "task.json";  // a fine-tuned encoder's task, labels and scores
}  // namespace run_file

// RUN/NAME, NAME one of run_file's.
std::string run_path(const std::string& run_dir, const char* name);

// One logged step. step, loss, tokens and flops are required in every row; the rest
// are optional on reading (older runs lack `seconds`): NaN when absent.
struct MetricsRow {
  int64_t step = 0;
  double loss = 0;       // that step's training loss
  double tokens = 0;     // training tokens so far
  double flops = 0;      // training FLOPs so far (exact count)
  double lr = NAN, grad_norm = NAN;
  double tokens_per_s = NAN, mfu = NAN;  // over the logging window (all ranks)
  double seconds = NAN;  // wall time of the training steps so far (evaluation excluded)
  double val_loss = NAN;   // on evaluation steps
  double val_accuracy = NAN;  // encoders' masked-LM accuracy, on evaluation steps
  double comm_share = NAN;  // under MPI: time in collectives over step time
  bool has_val() const { return std::isfinite(val_loss); }
};

nlohmann::json metrics_json(const MetricsRow& row);  // the absent (NaN) fields left out

// Every row of a metrics.jsonl; an unreadable file, or a line that is not a row
// (a torn write, a hand edit), is an Error naming the file and line.
std::vector<MetricsRow> read_metrics(const std::string& path);

// Keeps the rows up to `step` (a resumed run rewrites what came after); a torn last
// line from a crash is dropped.
void truncate_metrics(const std::string& path, int64_t step);

}  // namespace fw
